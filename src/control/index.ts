// control: the only reader of control files; typed catalogue of every knob with defaults.
export { Control, ControlReadError } from './control.js';
export { ControlFileCache } from './filecache.js';
export { CATALOGUE, controlDef, type ControlDef, type ControlName } from './catalogue.js';
export { parseList, parseMap, parseNumber, parseSingle, type MapEntry } from './parse.js';
