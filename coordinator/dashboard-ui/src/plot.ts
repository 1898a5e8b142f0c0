/** A line plot over rounds (uPlot, drawn on canvas) with the same numbers as a table beside it. */
import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** Colour-blind-safe (Okabe-Ito), all readable on white. */
const COLOURS = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#000000'];

export interface Series {
  label: string;
  /** One value per x, null where the series has none. */
  values: (number | null)[];
}

export function Plot(props: { title: string; xLabel: string; xs: number[]; series: Series[]; id: string }) {
  const box = useRef<HTMLDivElement>(null);
  const { title, xLabel, xs, series, id } = props;
  useEffect(() => {
    const el = box.current;
    if (!el || xs.length === 0) return;
    const plot = new uPlot(
      {
        title,
        width: Math.max(320, Math.min(860, el.clientWidth || 640)),
        height: 260,
        scales: { x: { time: false } },
        // Rounds are whole numbers: ticks at 1, 2, 5, 10, ... apart, never 1.5.
        axes: [{ label: xLabel, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] }, {}],
        series: [
          { label: xLabel },
          ...series.map((s, i) => ({
            label: s.label,
            stroke: COLOURS[i % COLOURS.length],
            width: 2,
            points: { show: true },
            spanGaps: true,
          })),
        ],
      },
      [xs, ...series.map((s) => s.values)] as uPlot.AlignedData,
      el,
    );
    return () => plot.destroy();
  }, [title, xLabel, xs, series]);
  if (xs.length === 0) return html`<p>${title}: nothing to plot yet.</p>`;
  return html`<figure class="plot" aria-labelledby=${`${id}-caption`}>
    <div ref=${box} role="img" aria-label=${`${title}; the table below has the same values`}></div>
    <figcaption id=${`${id}-caption`}>
      <details>
        <summary>${title}: table of the plotted values</summary>
        <table>
          <thead>
            <tr>
              <th scope="col">${xLabel}</th>
              ${series.map((s) => html`<th scope="col">${s.label}</th>`)}
            </tr>
          </thead>
          <tbody>
            ${xs.map(
              (x, i) => html`<tr>
                <th scope="row">${x}</th>
                ${series.map((s) => html`<td>${fmt(s.values[i])}</td>`)}
              </tr>`,
            )}
          </tbody>
        </table>
      </details>
    </figcaption>
  </figure>`;
}

export function fmt(v: number | null | undefined, digits = 4): string {
  return v === null || v === undefined ? '–' : v.toFixed(digits);
}
