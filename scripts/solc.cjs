#!/usr/bin/env node
// Minimal solc CLI over the npm (WebAssembly) `solc` package, for forge and py-solc-x.
//
// Answers `--version` and `--standard-json` (stdin -> stdout). Unlike `solcjs
// --standard-json`, nothing but the JSON output is written to stdout, so JSON
// readers can parse it. Other flags forge passes (--base-path, --include-path,
// --allow-paths) only widen where imports are looked up.
//
// DATASAFE_SOLC_MODULE selects the npm package (default `solc`); the sibling
// `solc-0.8.29.cjs` pins the compiler EAS needs.
"use strict";
const fs = require("fs");
const path = require("path");

const repoRoot = path.resolve(__dirname, "..");
const moduleName = process.env.DATASAFE_SOLC_MODULE || "solc";
const solc = require(require.resolve(moduleName, { paths: [repoRoot] }));

const args = process.argv.slice(2);
const searchRoots = [process.cwd(), repoRoot, path.join(repoRoot, "node_modules")];
for (let i = 0; i < args.length; i++) {
  if (["--base-path", "--include-path", "--allow-paths"].includes(args[i]) && args[i + 1]) {
    for (const p of args[i + 1].split(",")) searchRoots.push(path.resolve(p));
    i++;
  }
}

function findImports(importPath) {
  for (const root of searchRoots) {
    const candidate = path.isAbsolute(importPath) ? importPath : path.join(root, importPath);
    try {
      return { contents: fs.readFileSync(candidate, "utf8") };
    } catch (_) {
      // try the next root
    }
  }
  return { error: `File not found: ${importPath}` };
}

if (args.includes("--version") || args.includes("-v")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}

if (args.includes("--standard-json")) {
  const chunks = [];
  process.stdin.on("data", (c) => chunks.push(c));
  process.stdin.on("end", () => {
    const input = Buffer.concat(chunks).toString("utf8");
    const output = solc.compile(input, { import: findImports });
    process.stdout.write(output);
    process.stdout.write("\n");
  });
} else {
  process.stderr.write("usage: solc.cjs --version | --standard-json < input.json\n");
  process.exit(2);
}
