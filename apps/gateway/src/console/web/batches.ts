import { ApiError, apiKey, getBlob, getJson, postJson } from './api';
import { type Batch, type Row, type RowActions, draw, makeRow, plural } from './batch-row';
import { byId, setText } from './dom';
import { clock } from './format';

const POLL_MS = 2_000;
/** The Batch API's largest page: the view shows the newest batches, which are the ones still moving. */
const PAGE = 100;
/** The download reads the blob after click() returns; revoking the URL at once could cut it off. */
const REVOKE_AFTER_MS = 60_000;

interface BatchList {
  data: Batch[];
  has_more: boolean;
}

/**
 * The batches view: polls the tenant's batches every two seconds while it is
 * shown and the tab is visible, with their progress, files and errors.
 */
export class BatchesView {
  private readonly rows = new Map<string, Row>();
  private timer: number | null = null;
  /** Bumped by every stop: a response that comes back after it belongs to an abandoned loop. */
  private generation = 0;
  private looping = false;
  private active = false;
  /** Whether the error line shows a failed list (the next good one clears it) or a failed action (it stays). */
  private listFailed = false;
  private readonly actions: RowActions = {
    download: (btn, fileId, filename) => void this.download(btn, fileId, filename),
    cancel: (row) => void this.cancel(row),
  };

  constructor() {
    document.addEventListener('visibilitychange', () => {
      if (!this.active) return;
      if (document.hidden) this.stop();
      else this.start();
    });
  }

  show(): void {
    this.active = true;
    this.start();
  }

  hide(): void {
    this.active = false;
    this.stop();
  }

  /** The key changed: the rows belong to the old one's tenant. */
  reset(): void {
    this.stop();
    this.rows.clear();
    byId('batches', HTMLTableElement).tBodies[0]?.replaceChildren();
    byId('batches-wrap', HTMLElement).hidden = true;
    byId('batches-empty', HTMLElement).hidden = true;
    this.showError('', false);
    if (this.active) this.start();
  }

  private start(): void {
    if (this.looping || document.hidden) return;
    this.looping = true;
    void this.poll(this.generation);
  }

  private stop(): void {
    this.generation++;
    this.looping = false;
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
  }

  /** Polls now instead of at the next tick (after a cancel). */
  private refresh(): void {
    this.stop();
    if (this.active) this.start();
  }

  private async poll(generation: number): Promise<void> {
    this.timer = null;
    if (!apiKey.get()) {
      setText('batches-status', 'Enter an API key to see the batches.');
    } else {
      try {
        const list = await getJson<BatchList>(`/v1/batches?limit=${PAGE}`);
        if (generation !== this.generation) return;
        this.render(list);
        if (this.listFailed) this.showError('', false);
      } catch (e) {
        if (generation !== this.generation) return;
        this.showError(e instanceof ApiError ? `Could not list the batches: ${e.message} (${e.code})` : 'The gateway does not answer.', true);
      }
    }
    if (generation === this.generation) this.timer = window.setTimeout(() => void this.poll(generation), POLL_MS);
  }

  private render(list: BatchList): void {
    const open = list.data.filter((b) => b.status === 'validating' || b.status === 'in_progress' || b.status === 'finalizing').length;
    const more = list.has_more ? ` · showing the newest ${PAGE}` : '';
    setText('batches-status', `Updated ${clock(Date.now())} · ${plural(list.data.length, 'batch', 'batches')}, ${open} running${more}`);
    byId('batches-empty', HTMLElement).hidden = list.data.length > 0;
    byId('batches-wrap', HTMLElement).hidden = list.data.length === 0;
    const seen = new Set<string>();
    const order: HTMLTableRowElement[] = [];
    for (const b of list.data) {
      seen.add(b.id);
      const row = this.rows.get(b.id) ?? makeRow(b, this.actions);
      this.rows.set(b.id, row);
      draw(row, b);
      order.push(row.tr, row.details);
    }
    for (const id of [...this.rows.keys()]) if (!seen.has(id)) this.rows.delete(id);
    const body = byId('batches', HTMLTableElement).tBodies[0];
    // Re-inserting rows that are already in place would take focus from their buttons.
    if (body && (body.children.length !== order.length || order.some((tr, i) => body.children[i] !== tr))) body.replaceChildren(...order);
  }

  private async download(btn: HTMLButtonElement, fileId: string | null, filename: string): Promise<void> {
    // Busy rather than disabled: disabling the focused button would drop keyboard focus to the page.
    if (!fileId || btn.getAttribute('aria-busy') === 'true') return;
    btn.setAttribute('aria-busy', 'true');
    try {
      const url = URL.createObjectURL(await getBlob(`/v1/files/${encodeURIComponent(fileId)}/content`));
      const a = document.createElement('a');
      a.href = url;
      a.download = filename;
      a.hidden = true;
      document.body.append(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), REVOKE_AFTER_MS);
    } catch (e) {
      this.showError(`Could not download ${filename}: ${e instanceof ApiError ? e.message : 'the gateway does not answer.'}`, false);
    } finally {
      btn.removeAttribute('aria-busy');
    }
  }

  private async cancel(row: Row): Promise<void> {
    row.cancel.disabled = true;
    try {
      draw(row, await postJson<Batch>(`/v1/batches/${encodeURIComponent(row.batch.id)}/cancel`));
    } catch (e) {
      this.showError(`Could not cancel ${row.batch.id}: ${e instanceof ApiError ? e.message : 'the gateway does not answer.'}`, false);
    } finally {
      row.cancel.disabled = false;
    }
    this.refresh();
  }

  private showError(text: string, fromList: boolean): void {
    this.listFailed = fromList && text !== '';
    // An alert is announced again on every write, even of the same text: write only changes.
    const line = byId('batches-error', HTMLParagraphElement);
    if (line.textContent !== text) line.textContent = text;
  }
}
