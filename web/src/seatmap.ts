// The seat map: one canvas, drawn from typed arrays so a 50,000-seat stadium pans and zooms
// smoothly. Seats are batched into one path per colour (a handful of fills per frame, not one
// per seat), culled to the viewport, and found under the pointer through a uniform grid.

export interface SeatJson {
  id: string;
  number: number;
  x: number;
  y: number;
  category: string;
  accessible?: boolean;
}
export interface LayoutJson {
  venue: { id: string; name: string };
  categories: { id: string; name: string }[];
  sections: { id: string; name: string; rows: { label: string; seats: SeatJson[] }[] }[];
}

/** What a seat is, from this buyer's point of view. */
export const enum SeatState {
  Free = 0,
  Taken = 1,
  Selected = 2,
  Mine = 3,
}

/** A seat's description for tooltips, the live region and the side panel. */
export interface SeatInfo {
  id: string;
  section: string;
  row: string;
  number: number;
  category: string;
  accessible: boolean;
  state: SeatState;
}

// Colour-blind-safe palette (Okabe & Ito), in category order.
export const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999933"];
const TAKEN = "#c9ccd1";
const SELECTED = "#111827";
const MINE = "#7c3aed";

export class SeatMap {
  readonly canvas: HTMLCanvasElement;
  readonly count: number;
  readonly ids: string[];
  readonly index = new Map<string, number>();
  readonly xs: Float32Array;
  readonly ys: Float32Array;
  readonly cat: Uint8Array;
  readonly accessible: Uint8Array;
  readonly state: Uint8Array;
  readonly number: Int32Array;
  /** Row of each seat (index into rowLabels / rowSection). */
  readonly row: Uint32Array;
  readonly rowLabels: string[] = [];
  readonly rowSection: number[] = [];
  /** Seats of each row, ordered by x. */
  readonly rowSeats: number[][] = [];
  readonly sectionNames: string[] = [];
  readonly sectionBox: [number, number, number, number][] = [];
  readonly categories: { id: string; name: string }[];
  readonly seatSize: number;
  private bounds: [number, number, number, number];
  /** The distance from the origin to the nearest seat (a stadium's field fits inside it). */
  private innerRadius = Infinity;
  // View: screen = (world - origin) * scale.
  private scale = 1;
  private ox = 0;
  private oy = 0;
  private grid = new Map<number, number[]>();
  private cell: number;
  private raf = 0;
  /** The buyer moved the view: a resize keeps it instead of fitting the venue again. */
  private touched = false;
  hover = -1;
  focus = -1;
  onHover: (seat: number, clientX: number, clientY: number) => void = () => {};
  onClick: (seat: number) => void = () => {};
  onFocusSeat: (seat: number) => void = () => {};

  constructor(canvas: HTMLCanvasElement, layout: LayoutJson) {
    this.canvas = canvas;
    this.categories = layout.categories;
    const catIndex = new Map(layout.categories.map((c, i) => [c.id, i]));
    let n = 0;
    for (const s of layout.sections) for (const r of s.rows) n += r.seats.length;
    this.count = n;
    this.ids = new Array(n);
    this.xs = new Float32Array(n);
    this.ys = new Float32Array(n);
    this.cat = new Uint8Array(n);
    this.accessible = new Uint8Array(n);
    this.state = new Uint8Array(n);
    this.number = new Int32Array(n);
    this.row = new Uint32Array(n);
    let i = 0;
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    let spacing = Infinity;
    layout.sections.forEach((section, si) => {
      this.sectionNames.push(section.name);
      let sx0 = Infinity, sy0 = Infinity, sx1 = -Infinity, sy1 = -Infinity;
      for (const r of section.rows) {
        const rowIndex = this.rowLabels.length;
        this.rowLabels.push(r.label);
        this.rowSection.push(si);
        const members: number[] = [];
        let prev: SeatJson | null = null;
        for (const seat of r.seats) {
          this.ids[i] = seat.id;
          this.index.set(seat.id, i);
          this.xs[i] = seat.x;
          this.ys[i] = seat.y;
          this.cat[i] = catIndex.get(seat.category) ?? 0;
          this.accessible[i] = seat.accessible ? 1 : 0;
          this.number[i] = seat.number;
          this.row[i] = rowIndex;
          members.push(i);
          if (prev) {
            const d = Math.hypot(seat.x - prev.x, seat.y - prev.y);
            if (d > 0 && d < spacing) spacing = d;
          }
          prev = seat;
          sx0 = Math.min(sx0, seat.x); sy0 = Math.min(sy0, seat.y);
          sx1 = Math.max(sx1, seat.x); sy1 = Math.max(sy1, seat.y);
          i++;
        }
        members.sort((a, b) => this.number[a] - this.number[b]);
        this.rowSeats.push(members);
      }
      this.sectionBox.push([sx0, sy0, sx1, sy1]);
      minX = Math.min(minX, sx0); minY = Math.min(minY, sy0);
      maxX = Math.max(maxX, sx1); maxY = Math.max(maxY, sy1);
    });
    if (!isFinite(spacing)) spacing = 10;
    this.seatSize = spacing * 0.78;
    this.bounds = [minX, minY, maxX, maxY];
    this.cell = spacing * 2;
    for (let k = 0; k < n; k++) {
      this.innerRadius = Math.min(this.innerRadius, Math.hypot(this.xs[k], this.ys[k]));
      const key = this.cellKey(Math.floor(this.xs[k] / this.cell), Math.floor(this.ys[k] / this.cell));
      let list = this.grid.get(key);
      if (!list) this.grid.set(key, (list = []));
      list.push(k);
    }
    this.installInput();
  }

  private cellKey(cx: number, cy: number): number {
    return (cx + 32768) * 65536 + (cy + 32768);
  }

  /** Fits the whole venue (and the stage) in the canvas. */
  fit(): void {
    this.touched = false;
    const { width, height } = this.cssSize();
    const [x0, y0, x1, y1] = this.bounds;
    const pad = this.seatSize * 3;
    const stage = this.stageHeight();
    const w = x1 - x0 + pad * 2;
    const h = y1 - y0 + pad * 2 + stage;
    this.scale = Math.min(width / w, height / h);
    this.ox = x0 - pad - (width / this.scale - w) / 2;
    this.oy = y0 - pad - stage - (height / this.scale - h) / 2;
    this.draw();
  }

  private stageHeight(): number {
    return this.seatSize * 4;
  }

  private cssSize(): { width: number; height: number } {
    const r = this.canvas.getBoundingClientRect();
    return { width: Math.max(1, r.width), height: Math.max(1, r.height) };
  }

  /** Resizes the backing store to the element's size × devicePixelRatio. */
  resize(): void {
    const { width, height } = this.cssSize();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(height * dpr);
    if (this.touched) this.draw();
    else this.fit();
  }

  zoomAt(factor: number, sx: number, sy: number): void {
    this.touched = true;
    const wx = sx / this.scale + this.ox;
    const wy = sy / this.scale + this.oy;
    this.scale = Math.min(Math.max(this.scale * factor, 0.02), 200);
    this.ox = wx - sx / this.scale;
    this.oy = wy - sy / this.scale;
    this.draw();
  }

  zoom(factor: number): void {
    const { width, height } = this.cssSize();
    this.zoomAt(factor, width / 2, height / 2);
  }

  /** Screen position (CSS px, relative to the canvas) of a seat. */
  screenOf(seat: number): [number, number] {
    return [(this.xs[seat] - this.ox) * this.scale, (this.ys[seat] - this.oy) * this.scale];
  }

  /** Pans just enough to bring the seat into view (keyboard navigation). */
  reveal(seat: number): void {
    const { width, height } = this.cssSize();
    const [sx, sy] = this.screenOf(seat);
    const margin = Math.min(30, width / 4, height / 4);
    const dx = sx < margin ? sx - margin : sx > width - margin ? sx - (width - margin) : 0;
    const dy = sy < margin ? sy - margin : sy > height - margin ? sy - (height - margin) : 0;
    if (dx || dy) {
      this.touched = true;
      this.ox += dx / this.scale;
      this.oy += dy / this.scale;
    }
    this.draw();
  }

  seatAt(sx: number, sy: number): number {
    const wx = sx / this.scale + this.ox;
    const wy = sy / this.scale + this.oy;
    const cx = Math.floor(wx / this.cell);
    const cy = Math.floor(wy / this.cell);
    // A small seat on a zoomed-out map is still easy to hit: at least 6 px around it.
    const reach = Math.max(this.seatSize * 0.6, 6 / this.scale);
    let best = -1;
    let bestD = reach * reach;
    const span = Math.ceil(reach / this.cell);
    for (let dx = -span; dx <= span; dx++) {
      for (let dy = -span; dy <= span; dy++) {
        const list = this.grid.get(this.cellKey(cx + dx, cy + dy));
        if (!list) continue;
        for (const k of list) {
          const d = (this.xs[k] - wx) ** 2 + (this.ys[k] - wy) ** 2;
          if (d <= bestD) {
            bestD = d;
            best = k;
          }
        }
      }
    }
    return best;
  }

  info(seat: number): SeatInfo {
    const r = this.row[seat];
    return {
      id: this.ids[seat],
      section: this.sectionNames[this.rowSection[r]],
      row: this.rowLabels[r],
      number: this.number[seat],
      category: this.categories[this.cat[seat]]?.id ?? "",
      accessible: this.accessible[seat] === 1,
      state: this.state[seat] as SeatState,
    };
  }

  /** The next seat from `seat` for an arrow key: along the row, or the nearest in the next row. */
  neighbour(seat: number, key: string): number {
    if (seat < 0) return this.firstFree();
    const r = this.row[seat];
    const members = this.rowSeats[r];
    const at = members.indexOf(seat);
    if (key === "ArrowLeft") return members[Math.max(0, at - 1)];
    if (key === "ArrowRight") return members[Math.min(members.length - 1, at + 1)];
    const step = key === "ArrowUp" ? -1 : 1;
    const next = r + step;
    if (next < 0 || next >= this.rowSeats.length) return seat;
    let best = seat;
    let bestD = Infinity;
    for (const k of this.rowSeats[next]) {
      const d = Math.abs(this.xs[k] - this.xs[seat]) + Math.abs(this.ys[k] - this.ys[seat]) * 0.01;
      if (d < bestD) {
        bestD = d;
        best = k;
      }
    }
    return best;
  }

  firstFree(): number {
    for (let k = 0; k < this.count; k++) if (this.state[k] === SeatState.Free) return k;
    return 0;
  }

  /** Redraws on the next animation frame (many changes, one frame). */
  draw(): void {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.paint();
    });
  }

  /** Draws now. */
  paint(): void {
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    const dpr = window.devicePixelRatio || 1;
    const { width, height } = this.cssSize();
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, width, height);
    const s = this.scale;
    const ox = this.ox, oy = this.oy;
    // The stage above the front rows (smaller y is closer to it); a stadium's seats ring the
    // origin, around the field.
    const [x0, y0, x1, y1] = this.bounds;
    const ring = x0 < 0 && y0 < 0 && x1 > 0 && y1 > 0;
    const stage = this.stageHeight();
    let bx: number, by: number, bw: number, bh: number;
    if (ring) {
      bw = this.innerRadius * 1.1;
      bh = this.innerRadius * 0.7;
      bx = -bw / 2;
      by = -bh / 2;
    } else {
      bw = (x1 - x0) * 0.6;
      bh = stage * 0.7;
      bx = x0 + (x1 - x0) * 0.2;
      by = y0 - stage - this.seatSize * 2.5;
    }
    ctx.fillStyle = ring ? "#15803d" : "#374151";
    ctx.fillRect((bx - ox) * s, (by - oy) * s, bw * s, bh * s);
    ctx.fillStyle = "#ffffff";
    ctx.font = `600 ${Math.max(10, Math.min(16, bh * 0.5 * s))}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(ring ? "FIELD" : "STAGE", (bx + bw / 2 - ox) * s, (by + bh / 2 - oy) * s);
    const size = Math.max(this.seatSize * s, 1.2);
    const half = size / 2;
    const round = size >= 7;
    // One path per colour: the categories' free seats, then taken, selected, mine.
    const paths: Path2D[] = [];
    const nColours = this.categories.length + 3;
    for (let c = 0; c < nColours; c++) paths.push(new Path2D());
    const access = new Path2D();
    const focusPad = half + 2;
    for (let k = 0; k < this.count; k++) {
      const x = (this.xs[k] - ox) * s;
      const y = (this.ys[k] - oy) * s;
      if (x < -size || y < -size || x > width + size || y > height + size) continue;
      const st = this.state[k];
      const p = st === SeatState.Free ? paths[this.cat[k]] : paths[this.categories.length + st - 1];
      if (round) {
        p.moveTo(x + half, y);
        p.arc(x, y, half, 0, Math.PI * 2);
      } else {
        p.rect(x - half, y - half, size, size);
      }
      if (this.accessible[k] && size >= 5) {
        access.moveTo(x + half * 0.45, y);
        access.arc(x, y, half * 0.45, 0, Math.PI * 2);
      }
    }
    this.categories.forEach((_, c) => {
      ctx.fillStyle = PALETTE[c % PALETTE.length];
      ctx.fill(paths[c]);
    });
    ctx.fillStyle = TAKEN;
    ctx.fill(paths[this.categories.length]);
    ctx.fillStyle = SELECTED;
    ctx.fill(paths[this.categories.length + 1]);
    ctx.fillStyle = MINE;
    ctx.fill(paths[this.categories.length + 2]);
    // Accessible seats: a white ring inside the seat, whatever its colour.
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = Math.max(1, size * 0.12);
    ctx.stroke(access);
    // Hover and keyboard focus.
    // The keyboard's seat is ringed only while the keyboard drives the map.
    const keyboard = document.activeElement === this.canvas && this.canvas.matches(":focus-visible") ? this.focus : -1;
    for (const [k, colour] of [[this.hover, "#111827"], [keyboard, "#dc2626"]] as [number, string][]) {
      if (k < 0) continue;
      const [x, y] = this.screenOf(k);
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(x, y, focusPad, 0, Math.PI * 2);
      ctx.stroke();
    }
    this.paintLabels(ctx, width, height, size);
  }

  private paintLabels(ctx: CanvasRenderingContext2D, width: number, height: number, size: number): void {
    const s = this.scale;
    ctx.textBaseline = "middle";
    // Row labels once seats are big enough to tell rows apart.
    if (size >= 8) {
      ctx.fillStyle = "#4b5563";
      ctx.font = `${Math.min(13, size * 0.9)}px system-ui, sans-serif`;
      ctx.textAlign = "right";
      for (let r = 0; r < this.rowSeats.length; r++) {
        const first = this.rowSeats[r][0];
        if (first === undefined) continue;
        const x = (this.xs[first] - this.ox) * s - size;
        const y = (this.ys[first] - this.oy) * s;
        if (x < -20 || x > width + 40 || y < 0 || y > height) continue;
        ctx.fillText(this.rowLabels[r], x, y);
      }
    }
    // Section names over their blocks, with a halo so they read over seats.
    ctx.textAlign = "center";
    const font = Math.max(10, Math.min(15, size * 1.4));
    ctx.font = `600 ${font}px system-ui, sans-serif`;
    ctx.lineWidth = 3;
    ctx.strokeStyle = "rgba(255,255,255,0.9)";
    ctx.fillStyle = "#111827";
    this.sectionBox.forEach(([x0, y0, x1], i) => {
      const x = ((x0 + x1) / 2 - this.ox) * s;
      const y = (y0 - this.oy) * s - size * 1.2 - 2;
      if (x < -50 || x > width + 50 || y < -10 || y > height + 10) return;
      ctx.strokeText(this.sectionNames[i], x, y);
      ctx.fillText(this.sectionNames[i], x, y);
    });
  }

  private installInput(): void {
    const c = this.canvas;
    const pointers = new Map<number, { x: number; y: number }>();
    let moved = 0;
    let pinch = 0;
    const local = (e: { clientX: number; clientY: number }) => {
      const r = c.getBoundingClientRect();
      return { x: e.clientX - r.left, y: e.clientY - r.top };
    };
    c.addEventListener("pointerdown", (e) => {
      c.setPointerCapture(e.pointerId);
      pointers.set(e.pointerId, local(e));
      moved = 0;
      if (pointers.size === 2) {
        const [a, b] = [...pointers.values()];
        pinch = Math.hypot(a.x - b.x, a.y - b.y);
      }
    });
    c.addEventListener("pointermove", (e) => {
      const p = local(e);
      const prev = pointers.get(e.pointerId);
      if (prev) {
        if (pointers.size === 1) {
          this.touched = true;
          moved += Math.abs(p.x - prev.x) + Math.abs(p.y - prev.y);
          this.ox -= (p.x - prev.x) / this.scale;
          this.oy -= (p.y - prev.y) / this.scale;
          this.draw();
        } else if (pointers.size === 2) {
          pointers.set(e.pointerId, p);
          const [a, b] = [...pointers.values()];
          const d = Math.hypot(a.x - b.x, a.y - b.y);
          if (pinch > 0) this.zoomAt(d / pinch, (a.x + b.x) / 2, (a.y + b.y) / 2);
          pinch = d;
          moved += 10;
        }
        pointers.set(e.pointerId, p);
      }
      const seat = this.seatAt(p.x, p.y);
      if (seat !== this.hover) {
        this.hover = seat;
        this.draw();
      }
      this.onHover(seat, e.clientX, e.clientY);
    });
    const end = (e: PointerEvent) => {
      const had = pointers.delete(e.pointerId);
      if (had && pointers.size === 0 && moved < 6 && e.type === "pointerup") {
        const p = local(e);
        const seat = this.seatAt(p.x, p.y);
        if (seat >= 0) this.onClick(seat);
      }
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    c.addEventListener("pointerleave", () => {
      this.hover = -1;
      this.onHover(-1, 0, 0);
      this.draw();
    });
    c.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const p = local(e);
        this.zoomAt(Math.exp(-e.deltaY * 0.0015), p.x, p.y);
      },
      { passive: false },
    );
    c.addEventListener("keydown", (e) => {
      if (e.key.startsWith("Arrow")) {
        e.preventDefault();
        this.focus = this.neighbour(this.focus, e.key);
        this.reveal(this.focus);
        this.onFocusSeat(this.focus);
      } else if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        if (this.focus < 0) {
          this.focus = this.firstFree();
          this.reveal(this.focus);
          this.onFocusSeat(this.focus);
        } else {
          this.onClick(this.focus);
        }
      } else if (e.key === "+" || e.key === "=") {
        this.zoom(1.4);
      } else if (e.key === "-") {
        this.zoom(1 / 1.4);
      }
    });
    c.addEventListener("blur", () => this.draw());
    c.addEventListener("focus", () => {
      if (this.focus < 0 && c.matches(":focus-visible")) {
        this.focus = this.firstFree();
        this.onFocusSeat(this.focus);
        this.draw();
      }
    });
  }
}
