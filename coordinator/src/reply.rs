//! Parsing script replies: arrays of integers and strings, as documented in each script header.

use fred::prelude::Value;

use crate::error::CoordinatorError;

/// A script's reply as a list, with typed accessors that name the script on failure.
pub(crate) struct Reply {
    script: &'static str,
    items: Vec<Value>,
}

impl Reply {
    pub(crate) fn new(script: &'static str, value: Value) -> Result<Self, CoordinatorError> {
        match value {
            Value::Array(items) if !items.is_empty() => Ok(Self { script, items }),
            other => Err(CoordinatorError::protocol(
                script,
                format!("expected a non-empty array, got {other:?}"),
            )),
        }
    }

    pub(crate) fn code(&self) -> Result<i64, CoordinatorError> {
        self.int(0)
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn int(&self, index: usize) -> Result<i64, CoordinatorError> {
        match self.items.get(index) {
            Some(Value::Integer(i)) => Ok(*i),
            Some(Value::String(s)) => s.parse().map_err(|_| self.bad(index, "an integer")),
            Some(Value::Bytes(b)) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| self.bad(index, "an integer")),
            _ => Err(self.bad(index, "an integer")),
        }
    }

    pub(crate) fn string(&self, index: usize) -> Result<String, CoordinatorError> {
        match self.items.get(index) {
            Some(Value::String(s)) => Ok(s.to_string()),
            Some(Value::Bytes(b)) => {
                String::from_utf8(b.to_vec()).map_err(|_| self.bad(index, "utf-8"))
            }
            Some(Value::Integer(i)) => Ok(i.to_string()),
            _ => Err(self.bad(index, "a string")),
        }
    }

    /// Every item from `from` on, as strings.
    pub(crate) fn strings_from(&self, from: usize) -> Result<Vec<String>, CoordinatorError> {
        (from..self.items.len()).map(|i| self.string(i)).collect()
    }

    /// The item at `index` as it came (nested replies).
    pub(crate) fn value(&self, index: usize) -> Option<&Value> {
        self.items.get(index)
    }

    /// A batch script's per-request replies (`{0, reply, reply, ...}`), one for each of its
    /// `requests`; a protocol error when the count differs.
    pub(crate) fn into_answers(self, requests: usize) -> Result<Vec<Value>, CoordinatorError> {
        if self.items.len() != requests + 1 {
            return Err(CoordinatorError::protocol(
                self.script,
                format!("{} replies for {requests} requests", self.items.len() - 1),
            ));
        }
        Ok(self.items.into_iter().skip(1).collect())
    }

    /// An unknown return code: the host-side enum and the script disagree.
    pub(crate) fn unknown_code(&self) -> CoordinatorError {
        CoordinatorError::protocol(
            self.script,
            format!("unknown return code in {:?}", self.items),
        )
    }

    fn bad(&self, index: usize, what: &str) -> CoordinatorError {
        CoordinatorError::protocol(
            self.script,
            format!("item {index} is not {what}: {:?}", self.items.get(index)),
        )
    }
}
