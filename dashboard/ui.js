// DOM helpers. Every value from the server goes into the page as text
// (textContent, text nodes, setAttribute), never as markup.

/**
 * Creates an element. `text` sets textContent, `class` the class list,
 * functions under `on…` become event listeners, `true` sets an empty
 * attribute, and false/null/undefined leave it out. Children may be nodes
 * or strings (added as text), nested in arrays.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'style' || key === 'innerHTML' || key === 'outerHTML') {
      throw new Error(`el(): ${key} is not allowed`);
    }
    if (key === 'text') {
      node.textContent = String(value);
    } else if (key === 'class') {
      node.className = value;
    } else if (key.startsWith('on')) {
      if (typeof value !== 'function') throw new Error(`el(): ${key} must be a function`);
      node.addEventListener(key.slice(2), value);
    } else if (value === true) {
      node.setAttribute(key, '');
    } else {
      node.setAttribute(key, String(value));
    }
  }
  append(node, children);
  return node;
}

/** Replaces a node's children; null, undefined and false are left out. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

let uniqueCounter = 0;

/** An id unique in this page, for label/aria wiring. */
export function uid(prefix) {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}

const numberFormat = new Intl.NumberFormat();
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function formatNumber(value) {
  return numberFormat.format(value);
}

/**
 * A <time> showing the moment in the viewer's local time, with the UTC ISO
 * value in its title and datetime.
 */
export function timeEl(iso) {
  if (!iso) return el('span', { class: 'muted', text: '—' });
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return el('span', { text: iso });
  const utc = date.toISOString();
  return el('time', { datetime: utc, title: utc, text: dateFormat.format(date) });
}

/** Text, or a muted dash when empty. */
export function textOrDash(value) {
  if (value === undefined || value === null || value === '') {
    return el('span', { class: 'muted', text: '—', 'aria-label': 'none' });
  }
  return String(value);
}

/** A labelled form control: returns { field, input }. */
export function field(label, inputProps = {}, hint) {
  const id = uid('field');
  const hintId = hint ? `${id}-hint` : null;
  const input = el(inputProps.tag ?? 'input', {
    ...inputProps,
    tag: undefined,
    id,
    'aria-describedby': hintId ?? inputProps['aria-describedby'],
  });
  const wrapper = el(
    'div',
    { class: 'field' },
    el('label', { for: id, text: label }),
    input,
    hint ? el('p', { class: 'hint', id: hintId, text: hint }) : null,
  );
  return { field: wrapper, input };
}

/** A page-size <select>. */
export function pageSizeSelect(current, sizes, onChange) {
  const { field: wrapper, input } = field('Rows per page', { tag: 'select', class: 'page-size' });
  for (const size of sizes) {
    input.append(el('option', { value: size, selected: size === current, text: formatNumber(size) }));
  }
  input.addEventListener('change', () => onChange(Number(input.value)));
  return wrapper;
}

/** A live region for what just happened ("Session ended", errors, …). */
export function statusLine() {
  const node = el('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  return {
    node,
    info(message) {
      node.className = 'status';
      node.textContent = message;
    },
    error(message) {
      node.className = 'status error';
      node.textContent = message;
    },
    clear() {
      node.className = 'status';
      node.textContent = '';
    },
  };
}

export function loading(message = 'Loading…') {
  return el('p', { class: 'loading', role: 'status', text: message });
}

/**
 * A table that becomes a list of cards on narrow screens. `columns` are
 * `{ label, render(row) → node|string, sortKey?, className? }`; a column
 * with `sortKey` gets a button that asks `onSort(sortKey)`.
 */
export function dataTable({ caption, columns, rows, sort, onSort, rowClass }) {
  const head = el(
    'tr',
    {},
    columns.map((column) => {
      if (!column.sortKey) {
        return el('th', { scope: 'col', class: column.className }, column.label);
      }
      const active = sort?.key === column.sortKey;
      const direction = active ? (sort.dir === 1 ? 'ascending' : 'descending') : 'none';
      const nextLabel = active && sort.dir === 1 ? 'descending' : 'ascending';
      return el(
        'th',
        { scope: 'col', class: column.className, 'aria-sort': direction },
        el(
          'button',
          {
            type: 'button',
            class: `sort${active ? ' active' : ''}`,
            'data-sort-key': column.sortKey,
            title: `Sort by ${column.label.toLowerCase()}, ${active ? nextLabel : 'ascending or descending'}`,
            onclick: () => onSort(column.sortKey),
          },
          column.label,
          el('span', { class: 'sort-mark', 'aria-hidden': 'true', text: active ? (sort.dir === 1 ? '▲' : '▼') : '↕' }),
        ),
      );
    }),
  );
  const body = el(
    'tbody',
    {},
    rows.map((row) =>
      el(
        'tr',
        { class: rowClass?.(row) },
        columns.map((column) =>
          el('td', { 'data-label': column.label, class: column.className }, el('div', { class: 'cell' }, column.render(row))),
        ),
      ),
    ),
  );
  return el(
    'div',
    { class: 'table-wrap' },
    el('table', { class: 'data' }, caption ? el('caption', { class: 'visually-hidden', text: caption }) : null, el('thead', {}, head), body),
  );
}

/**
 * Previous/next paging with where this page lies: "Rows 11–20 of 1,234 ·
 * page 2 of 124".
 */
export function pager({ label, first, shown, total, page, pages, hasPrevious, hasNext, onPrevious, onNext }) {
  const summary =
    total === 0
      ? 'No rows'
      : `Rows ${formatNumber(first)}–${formatNumber(first + shown - 1)} of ${formatNumber(total)} · page ${formatNumber(page)} of ${formatNumber(Math.max(pages, page))}`;
  return el(
    'nav',
    { class: 'pager', 'aria-label': label },
    el('p', { class: 'pager-summary', 'aria-live': 'polite', text: summary }),
    el(
      'div',
      { class: 'pager-buttons' },
      el('button', { type: 'button', class: 'secondary', disabled: !hasPrevious, onclick: onPrevious, text: '← Previous' }),
      el('button', { type: 'button', class: 'secondary', disabled: !hasNext, onclick: onNext, text: 'Next →' }),
    ),
  );
}

/** A dialog built for one question, removed when it closes. */
function modal(titleText, build) {
  return new Promise((resolve) => {
    const titleId = uid('dialog-title');
    const dialog = el('dialog', { 'aria-labelledby': titleId, class: 'modal' });
    let result = null;
    const done = (value) => {
      result = value;
      dialog.close();
    };
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });
    dialog.append(el('h2', { id: titleId, text: titleText }), build(done));
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Asks to confirm an action; resolves to true or false. */
export async function confirmDialog({ title, message, confirmLabel, danger = true }) {
  const answer = await modal(title, (done) => {
    const form = el(
      'form',
      {
        class: 'dialog-form',
        onsubmit: (event) => {
          event.preventDefault();
          done(true);
        },
      },
      el('p', { text: message }),
      el(
        'div',
        { class: 'actions' },
        el('button', { type: 'button', class: 'secondary', onclick: () => done(false), text: 'Cancel' }),
        el('button', { type: 'submit', class: danger ? 'danger' : 'primary', autofocus: true, text: confirmLabel }),
      ),
    );
    return form;
  });
  return answer === true;
}

/** Asks for a two-factor code; resolves to it, or null if cancelled. */
export function codeDialog(message) {
  return modal('Two-factor code', (done) => {
    const { field: codeField, input } = field(
      'Code from your authenticator app, or a backup code',
      { name: 'code', autocomplete: 'one-time-code', required: true, autofocus: true, spellcheck: 'false', autocapitalize: 'off' },
    );
    return el(
      'form',
      {
        class: 'dialog-form',
        onsubmit: (event) => {
          event.preventDefault();
          const code = input.value.trim();
          if (code) done(code);
        },
      },
      el('p', { class: 'dialog-message', text: message }),
      codeField,
      el(
        'div',
        { class: 'actions' },
        el('button', { type: 'button', class: 'secondary', onclick: () => done(null), text: 'Cancel' }),
        el('button', { type: 'submit', class: 'primary', text: 'Continue' }),
      ),
    );
  });
}

/**
 * Cursor paging state for the session lists: a stack of the cursors that
 * led to each page seen, so Previous pops one and Next pushes `nextCursor`.
 */
export class CursorStack {
  constructor() {
    this.reset();
  }

  reset() {
    this.cursors = [null];
  }

  get current() {
    return this.cursors[this.cursors.length - 1];
  }

  get pageIndex() {
    return this.cursors.length - 1;
  }

  get hasPrevious() {
    return this.cursors.length > 1;
  }

  push(cursor) {
    this.cursors.push(cursor);
  }

  pop() {
    if (this.cursors.length > 1) this.cursors.pop();
  }
}
