// toolbox: qmail's helper programs for .qmail files (preline, condredirect, bouncesaying, except, forward, ...).
export { TOOLS, runTool, type ToolName } from './tools.js';
export { writeToolboxBin } from './bin.js';
export { environBytes } from './io.js';
