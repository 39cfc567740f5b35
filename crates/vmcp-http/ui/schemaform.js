// A form generated from a JSON Schema object (a tool's inputSchema): strings, numbers, integers,
// booleans and enums get their own controls; objects, arrays and anything else a JSON text
// area. A "raw JSON" switch edits all the arguments as one JSON object.
import { checkbox, clear, errorBox, field, h, json, nextId } from './lib.js';

function mainType(p) {
  let t = p.type;
  if (Array.isArray(t)) t = t.find((x) => x !== 'null') || t[0];
  if (!t && p.enum) t = typeof p.enum[0];
  if (!t && (p.properties)) t = 'object';
  return t || 'any';
}

function control(name, p, required) {
  const t = mainType(p);
  const id = nextId('arg');
  const base = { id, name, 'data-arg': name };
  if (required) base['aria-required'] = 'true';
  if (Array.isArray(p.enum)) {
    const sel = h('select', base,
      required ? null : h('option', { value: '' }, '(not set)'),
      p.enum.map((v, i) => h('option', { value: String(i), selected: p.default !== undefined && v === p.default }, typeof v === 'string' ? v : JSON.stringify(v))));
    sel.read = () => (sel.value === '' ? undefined : p.enum[Number(sel.value)]);
    sel.write = (v) => { const i = p.enum.findIndex((e) => JSON.stringify(e) === JSON.stringify(v)); sel.value = i < 0 ? '' : String(i); };
    return sel;
  }
  if (t === 'boolean') {
    const sel = h('select', base, h('option', { value: '' }, '(not set)'), h('option', { value: 'true' }, 'true'), h('option', { value: 'false' }, 'false'));
    if (p.default !== undefined) sel.value = String(p.default);
    sel.read = () => (sel.value === '' ? undefined : sel.value === 'true');
    sel.write = (v) => { sel.value = v === undefined ? '' : String(!!v); };
    return sel;
  }
  if (t === 'number' || t === 'integer') {
    const input = h('input', { ...base, type: 'number', step: t === 'integer' ? 1 : 'any', min: p.minimum, max: p.maximum, inputmode: t === 'integer' ? 'numeric' : 'decimal' });
    if (p.default !== undefined) input.value = p.default;
    input.read = () => {
      if (input.value.trim() === '') return undefined;
      const n = Number(input.value);
      if (!Number.isFinite(n)) throw new Error(`${name}: "${input.value}" is not a number`);
      if (t === 'integer' && !Number.isInteger(n)) throw new Error(`${name}: must be a whole number`);
      return n;
    };
    input.write = (v) => { input.value = v === undefined ? '' : v; };
    return input;
  }
  if (t === 'string') {
    const long = (p.maxLength || 0) > 200 || p.format === 'textarea';
    const input = long ? h('textarea', { ...base, rows: 3 }) : h('input', { ...base, type: 'text', autocomplete: 'off', spellcheck: 'false' });
    if (p.default !== undefined) input.value = p.default;
    input.read = () => (input.value === '' && !required ? undefined : input.value);
    input.write = (v) => { input.value = v === undefined ? '' : (typeof v === 'string' ? v : JSON.stringify(v)); };
    return input;
  }
  // object, array, several types: JSON
  const area = h('textarea.mono', { ...base, rows: 3, spellcheck: 'false', placeholder: t === 'array' ? '[ ]' : t === 'object' ? '{ }' : 'JSON' });
  if (p.default !== undefined) area.value = JSON.stringify(p.default);
  area.read = () => {
    if (area.value.trim() === '') return undefined;
    try { return JSON.parse(area.value); } catch (e) { throw new Error(`${name}: not valid JSON (${e.message})`); }
  };
  area.write = (v) => { area.value = v === undefined ? '' : JSON.stringify(v); };
  return area;
}

function typeLabel(p) {
  const t = mainType(p);
  if (Array.isArray(p.enum)) return 'one of';
  return t === 'any' ? 'JSON' : t;
}

/**
 * The arguments form of a tool. `onSubmit(args, params)` runs on submit; its errors show in the
 * form. Returns the <form>.
 */
export function schemaForm(schema, onSubmit, submitLabel = 'Call') {
  schema = schema && typeof schema === 'object' ? schema : {};
  const props = schema.properties && typeof schema.properties === 'object' ? schema.properties : {};
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  const errors = h('div.form-errors');
  const controls = [];
  const fieldsBox = h('div.grid2.args');
  for (const [name, p0] of Object.entries(props)) {
    const p = p0 && typeof p0 === 'object' ? p0 : {};
    const c = control(name, p, required.has(name));
    controls.push([name, c]);
    const label = [name, required.has(name) ? h('span.req', { 'aria-hidden': 'true' }, ' *') : null, h('span.type', ` ${typeLabel(p)}`)];
    const hint = [p.title && p.title !== name ? p.title : null, p.description].filter(Boolean).join(': ');
    const f = field(label, c, hint || undefined);
    if (required.has(name)) f.classList.add('required');
    fieldsBox.append(f);
  }
  if (!controls.length) fieldsBox.append(h('p.muted', 'This tool takes no arguments.'));

  const rawSwitch = checkbox('Edit the arguments as raw JSON', false);
  const raw = h('textarea.mono', { rows: 6, spellcheck: 'false', 'aria-label': 'Arguments (JSON object)' });
  const rawBox = h('div', { hidden: true }, field('Arguments (JSON object)', raw));
  const params = h('textarea.mono', { rows: 2, spellcheck: 'false', placeholder: '{"name": "value"}' });
  const paramsBox = h('details.params', h('summary', 'Substitution parameters (@param:)'),
    field('params (JSON object, optional)', params, 'Values for @param: patterns of this call'));

  function readFields() {
    const args = {};
    const missing = [];
    for (const [name, c] of controls) {
      const v = c.read();
      if (v === undefined) {
        if (required.has(name)) missing.push(name);
      } else {
        args[name] = v;
      }
    }
    if (missing.length) throw new Error(`Required: ${missing.join(', ')}`);
    return args;
  }

  rawSwitch.control.addEventListener('change', () => {
    clear(errors);
    if (rawSwitch.control.checked) {
      let args = {};
      try {
        args = readFields();
      } catch {
        for (const [name, c] of controls) { try { const v = c.read(); if (v !== undefined) args[name] = v; } catch { /* left out */ } }
      }
      raw.value = json(args);
      rawBox.hidden = false;
      fieldsBox.hidden = true;
    } else {
      try {
        const args = JSON.parse(raw.value || '{}');
        for (const [name, c] of controls) c.write(args[name]);
      } catch { /* keep the fields as they were */ }
      rawBox.hidden = true;
      fieldsBox.hidden = false;
    }
  });

  const submit = h('button.primary', { type: 'submit' }, submitLabel);
  const form = h('form.schema-form', { novalidate: true }, fieldsBox, rawSwitch, rawBox, paramsBox, errors, h('div.actions', submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear(errors);
    let args;
    let p;
    try {
      if (rawSwitch.control.checked) {
        try { args = JSON.parse(raw.value || '{}'); } catch (e) { throw new Error(`Arguments: not valid JSON (${e.message})`); }
        if (!args || typeof args !== 'object' || Array.isArray(args)) throw new Error('Arguments: must be a JSON object');
      } else {
        args = readFields();
      }
      if (params.value.trim()) {
        try { p = JSON.parse(params.value); } catch (e) { throw new Error(`params: not valid JSON (${e.message})`); }
      }
    } catch (e) {
      errors.append(errorBox(e));
      return;
    }
    submit.disabled = true;
    submit.setAttribute('aria-busy', 'true');
    try {
      await onSubmit(args, p);
    } catch (e) {
      errors.append(errorBox(e));
    } finally {
      submit.disabled = false;
      submit.removeAttribute('aria-busy');
    }
  });
  return form;
}
