/**
 * The "how cost grows" chart: a Vega-Lite spec compiled and rendered to SVG
 * headless by Vega (no browser, no canvas, no network).
 */
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { Growth } from "./results.js";

/** Three panels: p50 latency and throughput by in-flight calls (Start, whole session), API memory by open Watches. */
export async function growthChart(growth: Growth): Promise<string> {
  const series = [
    ...growth.start.map((l) => ({ series: "Start", inFlight: l.inFlight, p50: l.summary.p50, perSecond: l.summary.perSecond })),
    ...growth.session.map((l) => ({ series: "whole session", inFlight: l.inFlight, p50: l.summary.p50, perSecond: l.summary.perSecond })),
  ];
  const byInFlight = (field: string, title: string) => ({
    width: 260,
    height: 200,
    data: { values: series },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "inFlight", type: "quantitative", scale: { type: "log", base: 2 }, title: "calls in flight" },
      y: { field, type: "quantitative", title },
      color: { field: "series", type: "nominal", title: null },
    },
  });
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: "How cost grows",
    hconcat: [
      byInFlight("p50", "p50 latency (ms)"),
      byInFlight("perSecond", "calls per second"),
      {
        width: 260,
        height: 200,
        data: { values: growth.watches.map((w) => ({ streams: w.streams, rssMiB: w.rssBytes / 2 ** 20 })) },
        mark: { type: "line", point: true },
        encoding: {
          x: { field: "streams", type: "quantitative", title: "open Watch streams" },
          y: { field: "rssMiB", type: "quantitative", title: "API RSS (MiB)" },
        },
      },
    ],
  } as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
