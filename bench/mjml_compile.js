// Compile MJML files with the official Node.js compiler, N times each, in one process,
// and print the median milliseconds per compile as JSON: {"file": ms, ...}.
const fs = require("fs");
const mjml2html = require("mjml");
const runs = parseInt(process.argv[2], 10);
const out = {};
for (const file of process.argv.slice(3)) {
  const source = fs.readFileSync(file, "utf8");
  mjml2html(source, { validationLevel: "skip" }); // warm up
  const times = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    mjml2html(source, { validationLevel: "skip" });
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  out[file] = times[Math.floor(times.length / 2)];
}
console.log(JSON.stringify(out));
