// What the two session lists share: the regex filter form with the
// server's error beside it, sorting, cursor paging over
// /api/v1/sessions/list and /list.all, and live updates from the event
// streams (/api/v1/sessions/events and /events.me).

import { api, ApiError, describeError, openStream, wantsCode } from './api.js';
import { CursorStack, el, field, fill, loading, pager, pageSizeSelect, uid } from './ui.js';

export const PAGE_SIZES = [10, 25, 50, 100];

/** Text columns sort A→Z first; the login time newest first. */
function defaultDirection(key) {
  return key === 'loginAt' ? -1 : 1;
}

/**
 * A paged, sorted, filtered session list. `render(page)` draws the rows;
 * the list owns the filter form, the pager and the loading/empty states.
 * `onLoad` is called after each page that loaded.
 */
export class SessionList {
  constructor({ path, twoFactor, label, signal, renderRows, emptyText, onLoad }) {
    this.path = path;
    this.onLoad = onLoad;
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
    // The load the user asked for, while it is under way.
    this.asked = null;
    this.page = null;
    // An error is shown with a Retry button: live updates leave it to the user.
    this.failed = false;

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

  /**
   * Loads the page the cursor stack points at. `quiet` (live updates):
   * the rows stay until the new ones come, no two-factor prompt opens, and
   * an error is returned instead of shown. A live update never replaces a
   * load the user asked for that is still under way: that one brings fresh
   * rows, or shows its error, itself.
   */
  async load({ keepRows = false, quiet = false } = {}) {
    if (quiet) return this.asked ? null : this.fetchPage({ keepRows, quiet });
    const asked = Symbol('asked');
    this.asked = asked;
    try {
      return await this.fetchPage({ keepRows, quiet });
    } finally {
      if (this.asked === asked) this.asked = null;
    }
  }

  async fetchPage({ keepRows, quiet }) {
    const sequence = ++this.sequence;
    this.results.setAttribute('aria-busy', 'true');
    if (!quiet && (!keepRows || !this.page)) fill(this.results, loading(`Loading ${this.label}…`));
    let answer;
    try {
      answer = await api(this.path, {
        query: {
          count: this.count,
          sort: JSON.stringify({ [this.sort.key]: this.sort.dir }),
          filter: this.filter,
          cursor: this.stack.current,
        },
        twoFactor: this.twoFactor && !quiet,
        signal: this.signal,
      });
    } catch (error) {
      if (sequence !== this.sequence || error?.name === 'AbortError') return null;
      this.results.setAttribute('aria-busy', 'false');
      if (quiet) return error;
      this.showError(error);
      return error;
    }
    if (sequence !== this.sequence) return null;
    this.results.setAttribute('aria-busy', 'false');
    this.failed = false;
    this.filterError.textContent = '';
    this.filterInput.removeAttribute('aria-invalid');
    const page = answer.data;
    if (page.sessions.length === 0 && this.stack.hasPrevious) {
      // The last rows of this page ended meanwhile: step back.
      this.stack.pop();
      return this.load({ quiet });
    }
    this.page = page;
    this.nextCursor = page.nextCursor ?? null;
    this.draw();
    this.onLoad?.();
    return null;
  }

  showError(error) {
    this.failed = true;
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

/** The "New device" badge, for a session whose device the user had not used recently. */
export function newDeviceBadge(session) {
  if (!session.newDevice) return null;
  return el('span', {
    class: 'badge new-device',
    title: 'Signed in from a browser, OS and network not used by this user recently',
    text: 'New device',
  });
}

/**
 * Reads Server-Sent Events: `push(text)` takes what arrived and returns
 * the frames it completed, as `{ id, event, data }` (`data` null for a
 * frame without any, such as the stream's opening `retry:`/`id:`).
 */
export class SseParser {
  constructor() {
    this.buffer = '';
  }

  push(text) {
    this.buffer += text.replace(/\r\n/g, '\n');
    const frames = [];
    let end;
    while ((end = this.buffer.indexOf('\n\n')) !== -1) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const frame = { id: null, event: 'message', data: null };
      const data = [];
      for (const line of block.split('\n')) {
        if (!line || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const name = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (name === 'id') frame.id = value;
        else if (name === 'event') frame.event = value;
        else if (name === 'data') data.push(value);
      }
      if (data.length) frame.data = data.join('\n');
      frames.push(frame);
    }
    return frames;
  }
}

/** Waits `ms`, or less if `signal` aborts. */
function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

const LIVE_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  paused: 'Live updates paused',
  off: 'Live updates off',
};

/**
 * A live feed of events while the page is shown: a stream read with
 * fetch, opened again after every drop with the last id seen
 * (`lastEventId`), so that no event is missed, and closed when `signal`
 * aborts. `node` is a small indicator of its state. When the stream wants
 * a two-factor code the feed pauses, and its Resume button calls
 * `onResume` (which may prompt) before opening it again.
 */
export class LiveFeed {
  constructor({ path, query, signal, onEvent, onResume }) {
    this.path = path;
    this.query = query;
    this.signal = signal;
    this.onEvent = onEvent;
    this.onResume = onResume;
    this.lastId = null;
    this.running = false;
    this.connected = false;
    this.paused = false;
    this.label = el('span', { class: 'live-label', text: LIVE_TEXT.connecting });
    this.resumeButton = el('button', {
      type: 'button',
      class: 'secondary small',
      text: 'Resume',
      hidden: true,
      onclick: () => this.resume(),
    });
    this.node = el(
      'p',
      { class: 'live', 'data-state': 'connecting' },
      el('span', { class: 'live-dot', 'aria-hidden': 'true' }),
      el('span', { role: 'status', 'aria-live': 'polite' }, this.label),
      this.resumeButton,
    );
  }

  show(state, detail) {
    if (this.paused && state !== 'paused') return;
    this.node.dataset.state = state;
    this.label.textContent = detail ? `${LIVE_TEXT[state]}: ${detail}` : LIVE_TEXT[state];
    this.resumeButton.hidden = state !== 'paused';
  }

  start() {
    if (this.running || this.signal?.aborted) return;
    this.running = true;
    this.run().finally(() => {
      this.running = false;
    });
  }

  /** After a pause: `onResume` (which may prompt), then the feed again. */
  async resume() {
    this.resumeButton.disabled = true;
    let failed = null;
    try {
      failed = (await this.onResume?.()) ?? null;
    } finally {
      this.resumeButton.disabled = false;
    }
    if (!failed) this.resumed();
  }

  /** Starts the feed, or ends a pause: the user's part is done. */
  resumed() {
    if (this.signal?.aborted) return;
    this.paused = false;
    if (this.running) this.show(this.connected ? 'live' : 'reconnecting');
    else this.start();
  }

  /**
   * Holds the feed until Resume: something needs the user first (a
   * two-factor code). The stream, if open, stays open meanwhile.
   */
  pause(detail) {
    this.show('paused', detail);
    this.paused = true;
  }

  async run() {
    let delay = 1000;
    let opened = false;
    while (!this.signal?.aborted) {
      this.show(opened ? 'reconnecting' : 'connecting');
      try {
        const response = await openStream(this.path, {
          query: { ...this.query, lastEventId: this.lastId },
          signal: this.signal,
        });
        opened = true;
        delay = 1000;
        this.connected = true;
        this.show('live');
        try {
          await this.read(response);
        } finally {
          this.connected = false;
        }
        // The server ended the stream (the session ended, an hour passed,
        // the server is stopping): open it again.
      } catch (error) {
        if (this.signal?.aborted || error?.name === 'AbortError') return;
        if (error instanceof ApiError) {
          // 401: the page signs out. A code, a permission or a bad
          // request: the user has to act first.
          if (error.status === 401) return;
          if (wantsCode(error) || error.errorType === 'totp-max-attempts') {
            this.pause(describeError(error));
            return;
          }
          if (error.status === 400 || error.status === 403) {
            this.show('off', describeError(error));
            return;
          }
          if (error.retryAfterSeconds) delay = Math.max(delay, error.retryAfterSeconds * 1000);
        }
        await pause(delay, this.signal);
        delay = Math.min(delay * 2, 30_000);
        continue;
      }
      await pause(1000, this.signal);
    }
  }

  async read(response) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SseParser();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      for (const frame of parser.push(value)) {
        if (frame.id !== null && /^\d+$/.test(frame.id)) this.lastId = frame.id;
        if (frame.data === null) continue;
        let payload;
        try {
          payload = JSON.parse(frame.data);
        } catch {
          continue;
        }
        this.onEvent(frame.event, payload);
      }
    }
  }
}

/**
 * Calls `refresh` once events stop arriving for a moment, and again if
 * more came while it ran, so that a burst of logins costs one reload.
 */
export function debounced(refresh, ms = 300) {
  let timer = null;
  let running = false;
  let again = false;
  const fire = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await refresh();
    } finally {
      running = false;
      if (again) {
        again = false;
        fire();
      }
    }
  };
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fire, ms);
  };
}
