// HJ 212 factor codes in the words officers use (GB/HJ names).
const NAMES: Record<string, { zh: string; en: string }> = {
  a21026: { zh: "二氧化硫", en: "sulfur dioxide" },
  a21002: { zh: "氮氧化物", en: "nitrogen oxides" },
  a21003: { zh: "一氧化氮", en: "nitric oxide" },
  a21004: { zh: "二氧化氮", en: "nitrogen dioxide" },
  a21005: { zh: "一氧化碳", en: "carbon monoxide" },
  a34013: { zh: "颗粒物（烟尘）", en: "particulate matter" },
  a19001: { zh: "氧含量", en: "oxygen" },
  a21024: { zh: "氯化氢", en: "hydrogen chloride" },
  a21028: { zh: "硫化氢", en: "hydrogen sulfide" },
  a21001: { zh: "氨", en: "ammonia" },
  a24088: { zh: "非甲烷总烃", en: "non-methane hydrocarbons" },
  a20057: { zh: "汞及其化合物", en: "mercury and compounds" },
  a01012: { zh: "烟气温度", en: "flue-gas temperature" },
  a00000: { zh: "烟气流量", en: "flue-gas flow" },
  w01018: { zh: "化学需氧量", en: "COD" },
  w21003: { zh: "氨氮", en: "ammonia nitrogen" },
  w21011: { zh: "总磷", en: "total phosphorus" },
  w21001: { zh: "总氮", en: "total nitrogen" },
  w01001: { zh: "pH 值", en: "pH" },
  w01012: { zh: "悬浮物", en: "suspended solids" },
  w00000: { zh: "废水流量", en: "wastewater flow" },
  w20116: { zh: "总铬", en: "total chromium" },
  w20117: { zh: "六价铬", en: "hexavalent chromium" },
  w20120: { zh: "总铅", en: "total lead" },
  w20111: { zh: "总汞", en: "total mercury" },
  w22001: { zh: "石油类", en: "petroleum oils" },
};

export function factorName(code: string, lang: "zh" | "en"): string {
  const n = NAMES[code];
  return n ? n[lang] : code;
}
