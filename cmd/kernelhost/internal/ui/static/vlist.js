// vlist.js: a virtualised list. Only the rows in view (plus a few above
// and below) are in the DOM, whatever the number of items, so a world of
// many thousands of principals or a fast event stream costs the page the
// same few dozen rows. Keyboard: Up/Down/PageUp/PageDown/Home/End move the
// selection, Enter opens it (aria-activedescendant names the row).

export const ROW = 26; // px, as --row in style.css

export class VList {
  /**
   * @param {HTMLElement} box the scrolling container (.vlist)
   * @param {(row: HTMLElement, item: any, index: number) => void} render fills a row
   * @param {(item: any, index: number) => void} onOpen called on click or Enter
   * @param {(item: any) => string} key a stable id of an item
   */
  constructor(box, render, onOpen, key) {
    this.box = box;
    this.render = render;
    this.onOpen = onOpen;
    this.key = key;
    this.items = [];
    this.selected = -1;
    this.spacer = document.createElement('div');
    this.spacer.className = 'spacer';
    box.append(this.spacer);
    this.rows = [];
    this.frame = 0;
    box.addEventListener('scroll', () => this.schedule());
    box.addEventListener('keydown', e => this.keydown(e));
    box.addEventListener('click', e => {
      const row = e.target.closest('.row');
      if (!row) return;
      const i = Number(row.dataset.index);
      this.select(i);
      this.onOpen(this.items[i], i);
    });
    new ResizeObserver(() => this.schedule()).observe(box);
  }

  /** setItems replaces the items (keeping the selected item selected when it is still there). */
  setItems(items) {
    const sel = this.selected >= 0 && this.items[this.selected] ? this.key(this.items[this.selected]) : null;
    this.items = items;
    this.selected = sel === null ? -1 : items.findIndex(it => this.key(it) === sel);
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  /** draw renders the rows in view now. */
  draw() {
    const n = this.items.length;
    this.spacer.style.height = n * ROW + 'px';
    const h = this.box.clientHeight || 400;
    const first = Math.max(0, Math.floor(this.box.scrollTop / ROW) - 5);
    const last = Math.min(n, Math.ceil((this.box.scrollTop + h) / ROW) + 5);
    const want = last - first;
    while (this.rows.length < want) {
      const r = document.createElement('div');
      r.className = 'row';
      r.setAttribute('role', 'option');
      this.box.append(r);
      this.rows.push(r);
    }
    while (this.rows.length > want) this.rows.pop().remove();
    for (let j = 0; j < want; j++) {
      const i = first + j, r = this.rows[j], item = this.items[i];
      r.dataset.index = String(i);
      r.id = this.box.id + '-row-' + i;
      r.style.transform = `translateY(${i * ROW}px)`;
      r.setAttribute('aria-selected', i === this.selected ? 'true' : 'false');
      r.setAttribute('aria-posinset', String(i + 1));
      r.setAttribute('aria-setsize', String(n));
      this.render(r, item, i);
    }
    if (this.selected >= 0) this.box.setAttribute('aria-activedescendant', this.box.id + '-row-' + this.selected);
    else this.box.removeAttribute('aria-activedescendant');
  }

  select(i) {
    if (this.items.length === 0) return;
    i = Math.max(0, Math.min(this.items.length - 1, i));
    this.selected = i;
    const top = i * ROW, h = this.box.clientHeight;
    if (top < this.box.scrollTop) this.box.scrollTop = top;
    else if (top + ROW > this.box.scrollTop + h) this.box.scrollTop = top + ROW - h;
    this.draw();
  }

  keydown(e) {
    const page = Math.max(1, Math.floor(this.box.clientHeight / ROW) - 1);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
    if (e.key in moves) this.select((this.selected < 0 ? -1 : this.selected) + moves[e.key]);
    else if (e.key === 'Home') this.select(0);
    else if (e.key === 'End') this.select(this.items.length - 1);
    else if (e.key === 'Enter' && this.selected >= 0) this.onOpen(this.items[this.selected], this.selected);
    else return;
    e.preventDefault();
  }
}
