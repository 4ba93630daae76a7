// ECharts, tree-shaken: only what the console draws is registered here (a chart type or
// component left out is dropped silently, so every option below uses only these).
import * as echarts from "echarts/core";
import { BarChart, LineChart, ScatterChart } from "echarts/charts";
import {
  GeoComponent,
  GridComponent,
  LegendComponent,
  TooltipComponent,
} from "echarts/components";
import { SVGRenderer } from "echarts/renderers";
import { useEffect, useRef } from "preact/hooks";
import counties from "./counties.geo.json";

echarts.use([BarChart, LineChart, ScatterChart, GeoComponent, GridComponent, LegendComponent,
  TooltipComponent, SVGRenderer]);
echarts.registerMap("liandong-counties", counties as never);

export const COUNTY_NAMES: Record<string, { zh: string; en: string }> = Object.fromEntries(
  counties.features.map((f) => [f.properties.code, { zh: f.properties.name, en: f.properties.name_en }]),
);

// Animations off when the user (or a test) asks for reduced motion: screenshots stay stable.
const still = matchMedia("(prefers-reduced-motion: reduce)").matches;

export function Chart(props: { option: echarts.EChartsCoreOption; height?: number; id: string }) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<echarts.ECharts | null>(null);
  useEffect(() => {
    if (!box.current) return;
    chart.current = echarts.init(box.current, undefined, { renderer: "svg" });
    const resize = new ResizeObserver(() => chart.current?.resize());
    resize.observe(box.current);
    return () => {
      resize.disconnect();
      chart.current?.dispose();
      chart.current = null;
    };
  }, []);
  useEffect(() => {
    chart.current?.setOption({ animation: !still, ...props.option }, true);
  }, [props.option]);
  return <div class="chart" data-chart={props.id} ref={box} style={{ height: `${props.height ?? 260}px` }} />;
}
