#!/usr/bin/env node
// The project's solc wrapper pinned to solc 0.8.29 (EAS 1.9.0 sources pin it).
"use strict";
process.env.DATASAFE_SOLC_MODULE = "solc-0.8.29";
require("./solc.cjs");
