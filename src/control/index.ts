// control: the only reader of control files; typed catalogue of every knob with defaults.
export { Control, ControlReadError, type Setting, type Source } from './control.js';
export { ControlFileCache } from './filecache.js';
export { CATALOGUE, controlDef, isControlName, type ControlDef, type ControlName, type ControlKind, type ControlDefault } from './catalogue.js';
export { parseList, parseMap, parseNumber, parseSingle, type MapEntry } from './parse.js';
