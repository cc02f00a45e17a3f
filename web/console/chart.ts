/**
 * A small SVG line chart of our own (no chart library, nothing from another origin): one card with a title, a
 * line per series over the last samples, and a legend with each series' latest value. The latest values are also
 * on the legend items as `data-value` (and `data-total` for counters), so what is drawn can be read back.
 * Colours come from classes (`c0`…`c5` in console.css): the page's CSP allows no inline styles.
 */

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 300;
const HEIGHT = 80;
const COLOURS = 6;

export interface Series {
  key: string;
  label: string;
  /** Oldest first; null draws nothing for that sample (e.g. no lag observed in that second). */
  values: (number | null)[];
  /** The counter's total at the last read, for counters. */
  total?: number;
}

export class Chart {
  readonly element: HTMLElement;
  private readonly svg: SVGSVGElement;
  private readonly legend: HTMLUListElement;
  private readonly scale: HTMLElement;
  /** Series keep their colour for the page's life, in order of appearance. */
  private readonly colours = new Map<string, number>();

  constructor(
    id: string,
    title: string,
    private readonly format: (v: number) => string,
    private readonly capacity: number,
  ) {
    this.element = document.createElement('section');
    this.element.className = 'chart';
    this.element.id = id;
    this.element.setAttribute('aria-label', title);
    const head = document.createElement('div');
    head.className = 'chart-head';
    const h2 = document.createElement('h2');
    h2.textContent = title;
    this.scale = document.createElement('span');
    this.scale.className = 'chart-scale';
    head.append(h2, this.scale);
    this.svg = document.createElementNS(SVG, 'svg');
    this.svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
    this.svg.setAttribute('preserveAspectRatio', 'none');
    this.svg.setAttribute('role', 'img');
    this.svg.setAttribute('aria-label', `${title}, last ${capacity} seconds`);
    this.legend = document.createElement('ul');
    this.legend.className = 'legend';
    this.element.append(head, this.svg, this.legend);
  }

  private colour(key: string): number {
    let c = this.colours.get(key);
    if (c === undefined) {
      c = this.colours.size % COLOURS;
      this.colours.set(key, c);
    }
    return c;
  }

  /** Redraws every series; the y axis runs from 0 to the largest value shown (at least 1). */
  draw(series: Series[]): void {
    let max = 1;
    for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
    this.scale.textContent = `max ${this.format(max)}`;
    const step = WIDTH / Math.max(1, this.capacity - 1);
    const lines = series.map((s) => {
      const line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('class', `line c${this.colour(s.key)}`);
      line.dataset.series = s.key;
      // Right-aligned: the newest sample is at the right edge. A null splits the line (only the points drawn).
      const offset = this.capacity - s.values.length;
      const points: string[] = [];
      s.values.forEach((v, i) => {
        if (v === null) return;
        const x = (offset + i) * step;
        const y = HEIGHT - (v / max) * (HEIGHT - 2) - 1;
        points.push(`${x.toFixed(1)},${y.toFixed(1)}`);
      });
      line.setAttribute('points', points.join(' '));
      line.setAttribute('vector-effect', 'non-scaling-stroke');
      return line;
    });
    this.svg.replaceChildren(...lines);
    this.legend.replaceChildren(
      ...series.map((s) => {
        const latest = s.values.length ? s.values[s.values.length - 1] : null;
        const li = document.createElement('li');
        li.dataset.series = s.key;
        li.dataset.value = latest === null ? '' : String(latest);
        if (s.total !== undefined) li.dataset.total = String(s.total);
        const swatch = document.createElement('i');
        swatch.className = `swatch c${this.colour(s.key)}`;
        const label = document.createElement('span');
        label.className = 'label';
        label.textContent = s.label;
        const value = document.createElement('b');
        value.className = 'value';
        value.textContent = latest === null ? '–' : this.format(latest);
        li.append(swatch, label, value);
        return li;
      }),
    );
  }
}
