// What the two session lists share: the regex filter form with the
// server's error beside it, sorting, and cursor paging over
// /api/v1/sessions/list and /list.all.

import { api, ApiError, describeError } from './api.js';
import { CursorStack, el, field, fill, loading, pager, pageSizeSelect, uid } from './ui.js';

export const PAGE_SIZES = [10, 25, 50, 100];

/** Text columns sort A→Z first; the login time newest first. */
function defaultDirection(key) {
  return key === 'loginAt' ? -1 : 1;
}

/**
 * A paged, sorted, filtered session list. `render(page)` draws the rows;
 * the list owns the filter form, the pager and the loading/empty states.
 */
export class SessionList {
  constructor({ path, twoFactor, label, signal, renderRows, emptyText }) {
    this.path = path;
    this.twoFactor = twoFactor;
    this.label = label;
    this.signal = signal;
    this.renderRows = renderRows;
    this.emptyText = emptyText;
    this.filter = '';
    this.sort = { key: 'loginAt', dir: -1 };
    this.count = PAGE_SIZES[1];
    this.stack = new CursorStack();
    this.nextCursor = null;
    this.sequence = 0;
    this.page = null;

    this.filterError = el('p', { class: 'field-error', id: uid('filter-error'), role: 'alert' });
    const filterField = field(
      'Filter (regular expression)',
      { type: 'search', name: 'filter', spellcheck: 'false', autocapitalize: 'off', 'aria-describedby': this.filterError.id },
    );
    this.filterInput = filterField.input;
    const form = el(
      'form',
      {
        class: 'filter',
        role: 'search',
        'aria-label': `Filter ${label}`,
        onsubmit: (event) => {
          event.preventDefault();
          this.setFilter(this.filterInput.value);
        },
      },
      filterField.field,
      el('button', { type: 'submit', class: 'primary', text: 'Apply filter' }),
      el('button', {
        type: 'button',
        class: 'secondary',
        text: 'Clear',
        onclick: () => {
          this.filterInput.value = '';
          this.setFilter('');
        },
      }),
      this.filterError,
    );
    this.toolbar = el(
      'div',
      { class: 'toolbar' },
      form,
      pageSizeSelect(this.count, PAGE_SIZES, (size) => {
        this.count = size;
        this.stack.reset();
        this.load();
      }),
    );
    this.results = el('div', { class: 'results', 'aria-busy': 'false' });
    this.node = el('div', { class: 'session-list' }, this.toolbar, this.results);
  }

  setFilter(value) {
    this.filter = value;
    this.stack.reset();
    this.load();
  }

  setSort(key) {
    if (this.sort.key === key) {
      this.sort = { key, dir: -this.sort.dir };
    } else {
      this.sort = { key, dir: defaultDirection(key) };
    }
    this.stack.reset();
    this.load();
  }

  next() {
    if (!this.nextCursor) return;
    this.stack.push(this.nextCursor);
    this.load();
  }

  previous() {
    this.stack.pop();
    this.load();
  }

  /** Loads the page the cursor stack points at. */
  async load({ keepRows = false } = {}) {
    const sequence = ++this.sequence;
    this.results.setAttribute('aria-busy', 'true');
    if (!keepRows || !this.page) fill(this.results, loading(`Loading ${this.label}…`));
    let answer;
    try {
      answer = await api(this.path, {
        query: {
          count: this.count,
          sort: JSON.stringify({ [this.sort.key]: this.sort.dir }),
          filter: this.filter,
          cursor: this.stack.current,
        },
        twoFactor: this.twoFactor,
        signal: this.signal,
      });
    } catch (error) {
      if (sequence !== this.sequence || error?.name === 'AbortError') return;
      this.results.setAttribute('aria-busy', 'false');
      this.showError(error);
      return;
    }
    if (sequence !== this.sequence) return;
    this.results.setAttribute('aria-busy', 'false');
    this.filterError.textContent = '';
    this.filterInput.removeAttribute('aria-invalid');
    const page = answer.data;
    if (page.sessions.length === 0 && this.stack.hasPrevious) {
      // The last rows of this page ended meanwhile: step back.
      this.stack.pop();
      return this.load();
    }
    this.page = page;
    this.nextCursor = page.nextCursor ?? null;
    this.draw();
  }

  showError(error) {
    const message = describeError(error);
    if (error instanceof ApiError && error.status === 400 && this.filter && !error.errorType?.startsWith('totp')) {
      this.filterError.textContent = message;
      this.filterInput.setAttribute('aria-invalid', 'true');
      if (!this.page) fill(this.results);
      else this.draw();
      return;
    }
    fill(this.results,
      el(
        'div',
        { class: 'notice error', role: 'alert' },
        el('p', { text: message }),
        el('button', { type: 'button', class: 'secondary', text: 'Retry', onclick: () => this.load() }),
      ),
    );
  }

  draw() {
    const page = this.page;
    if (page.total === 0 || page.sessions.length === 0) {
      fill(this.results, el('p', { class: 'empty', text: this.filter ? `No ${this.label} match this filter.` : this.emptyText }));
      return;
    }
    const first = this.stack.pageIndex * this.count + 1;
    fill(this.results,
      this.renderRows(page.sessions),
      pager({
        label: `Pages of ${this.label}`,
        first,
        shown: page.sessions.length,
        total: page.total,
        page: this.stack.pageIndex + 1,
        pages: Math.ceil(page.total / this.count),
        hasPrevious: this.stack.hasPrevious,
        hasNext: Boolean(this.nextCursor),
        onPrevious: () => this.previous(),
        onNext: () => this.next(),
      }),
    );
  }
}

/** "Chrome", or a dash for a device woothee did not know. */
export function deviceName(device) {
  return device?.name || 'Unknown device';
}
