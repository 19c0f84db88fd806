// Every visible text of the page, with its colour, the background behind it (the first
// ancestor with an opaque background) and their WCAG contrast ratio. Used by the
// dark-mode tests (tests/test_dark_mode.py); read from computed styles.
(() => {
  const parse = (value) => {
    const m = value.match(/rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/);
    return m ? { r: +m[1], g: +m[2], b: +m[3], a: m[4] === undefined ? 1 : +m[4] } : null;
  };
  const channel = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const ratio = (a, b) => { const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x); return (hi + 0.05) / (lo + 0.05); };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const c = parse(getComputedStyle(node).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.replace(/[\s\u034f\u200c\u00a0\u00ad\u200b]+/g, " ").trim();
    const el = node.parentElement;
    if (!text || !el) continue;
    const rect = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (rect.width < 2 || rect.height < 2 || style.visibility === "hidden" || +style.opacity === 0) continue;
    if (el.closest("[style*='display:none'], [style*='display: none']")) continue;
    const fg = parse(style.color), bg = background(el);
    out.push({ text: text.slice(0, 40), tag: el.tagName, color: style.color,
               background: `rgb(${bg.r}, ${bg.g}, ${bg.b})`, ratio: ratio(fg, bg),
               bgLuminance: lum(bg) });
  }
  return out;
})()
