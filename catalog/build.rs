// sqlx::migrate! embeds ../migrations at compile time; a new migration file must rebuild this
// crate (sqlx's documented build script: on stable, the macro cannot track the folder itself).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
