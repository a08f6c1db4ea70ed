const COLUMNS = 6;

type BatchStatus = 'validating' | 'in_progress' | 'finalizing' | 'completed' | 'failed' | 'expired' | 'cancelling' | 'cancelled';

interface BatchError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

/** The fields of OpenAI's `Batch` (apps/gateway/src/batches/batch-view.ts) that this view shows. */
export interface Batch {
  id: string;
  status: BatchStatus;
  endpoint: string;
  input_file_id: string;
  completion_window: string;
  created_at: number;
  expires_at: number;
  output_file_id: string | null;
  error_file_id: string | null;
  errors: { data: BatchError[] } | null;
  request_counts: { total: number; completed: number; failed: number };
  metadata: Record<string, string> | null;
  projected_completion_at: number | null;
  completion_window_at_risk: boolean;
}

/** One batch's elements, kept across polls: redrawing them in place keeps focus and expansion. */
export interface Row {
  batch: Batch;
  drawn: string;
  tr: HTMLTableRowElement;
  details: HTMLTableRowElement;
  toggle: HTMLButtonElement;
  output: HTMLButtonElement;
  errorFile: HTMLButtonElement;
  cancel: HTMLButtonElement;
}

/** The view's, not the row's: their failures go to the view's error line, and a cancel polls again at once. */
export interface RowActions {
  download(btn: HTMLButtonElement, fileId: string | null, filename: string): void;
  cancel(row: Row): void;
}

export function makeRow(b: Batch, on: RowActions): Row {
  const tr = document.createElement('tr');
  tr.className = 'batch';
  tr.dataset.batchId = b.id;
  tr.dataset.testid = 'batch-row';
  const details = document.createElement('tr');
  details.className = 'batch-details';
  details.id = `batch-details-${b.id}`;
  details.dataset.testid = 'batch-details';
  details.hidden = true;
  const toggle = button(b.id, 'expander', 'batch-toggle');
  toggle.setAttribute('aria-expanded', 'false');
  toggle.setAttribute('aria-controls', details.id);
  toggle.addEventListener('click', () => {
    details.hidden = !details.hidden;
    toggle.setAttribute('aria-expanded', String(!details.hidden));
  });
  const row: Row = {
    batch: b,
    drawn: '',
    tr,
    details,
    toggle,
    output: button('Output', 'secondary', 'batch-download-output'),
    errorFile: button('Errors', 'secondary', 'batch-download-errors'),
    cancel: button('Cancel', 'secondary danger', 'batch-cancel'),
  };
  row.output.setAttribute('aria-label', `Download the output of ${b.id}`);
  row.errorFile.setAttribute('aria-label', `Download the errors of ${b.id}`);
  row.cancel.setAttribute('aria-label', `Cancel ${b.id}`);
  // row.batch, not b: the file ids appear on later polls.
  row.output.addEventListener('click', () => on.download(row.output, row.batch.output_file_id, `${row.batch.id}_output.jsonl`));
  row.errorFile.addEventListener('click', () => on.download(row.errorFile, row.batch.error_file_id, `${row.batch.id}_error.jsonl`));
  row.cancel.addEventListener('click', () => on.cancel(row));
  const cells = Array.from({ length: COLUMNS }, () => tr.insertCell());
  cells[0]?.append(toggle);
  const actions = document.createElement('div');
  actions.className = 'actions';
  actions.append(row.output, row.errorFile, row.cancel);
  cells[COLUMNS - 1]?.append(actions);
  details.insertCell().colSpan = COLUMNS;
  return row;
}

/** Redraws a row from the batch, unless it is the batch it already shows. */
export function draw(row: Row, b: Batch): void {
  row.batch = b;
  const json = JSON.stringify(b);
  if (json === row.drawn) return;
  row.drawn = json;
  row.tr.dataset.status = b.status;
  const [, status, created, ends, progress] = Array.from(row.tr.cells);
  status?.replaceChildren(...statusBadges(b));
  if (created) created.textContent = when(b.created_at);
  ends?.replaceChildren(...windowCell(b));
  progress?.replaceChildren(progressBar(b.request_counts, b.status));
  row.output.hidden = !b.output_file_id;
  row.errorFile.hidden = !b.error_file_id;
  row.cancel.hidden = b.status !== 'validating' && b.status !== 'in_progress';
  row.details.cells[0]?.replaceChildren(...detailsOf(b));
}

function statusBadges(b: Batch): (Node | string)[] {
  const badge = span(`status ${b.status}`, b.status.replace('_', ' '));
  badge.dataset.testid = 'batch-status';
  const n = b.errors?.data.length ?? 0;
  return n > 0 ? [badge, span('tag bad sub', plural(n, 'error', 'errors'))] : [badge];
}

function windowCell(b: Batch): Node[] {
  const nodes: Node[] = [document.createTextNode(b.completion_window), span('muted sub', `ends ${when(b.expires_at)}`)];
  if (b.completion_window_at_risk) {
    const risk = span('tag risk sub', 'window at risk');
    risk.dataset.testid = 'batch-at-risk';
    if (b.projected_completion_at !== null) risk.title = `At its pace it ends ${when(b.projected_completion_at)}, after its window.`;
    nodes.push(risk);
  }
  return nodes;
}

/** Completed and failed requests as two segments of one bar, with the counts as text for everyone. */
function progressBar(c: Batch['request_counts'], status: BatchStatus): HTMLElement {
  const text =
    c.total > 0 ? `${c.completed} done · ${c.failed} failed / ${c.total}` : status === 'validating' ? 'reading the input…' : 'no requests';
  const wrap = document.createElement('div');
  wrap.className = 'progress';
  wrap.dataset.testid = 'batch-progress';
  wrap.setAttribute('role', 'progressbar');
  wrap.setAttribute('aria-valuemin', '0');
  wrap.setAttribute('aria-valuemax', String(c.total));
  wrap.setAttribute('aria-valuenow', String(c.completed + c.failed));
  wrap.setAttribute('aria-valuetext', text);
  const bar = document.createElement('div');
  bar.className = 'progress-bar';
  const done = span('progress-done', '');
  const failed = span('progress-failed', '');
  // CSSOM writes, not style attributes: the console's CSP allows no inline styles.
  done.style.width = `${c.total > 0 ? (100 * c.completed) / c.total : 0}%`;
  failed.style.width = `${c.total > 0 ? (100 * c.failed) / c.total : 0}%`;
  bar.append(done, failed);
  const label = span('progress-text', text);
  label.dataset.testid = 'batch-progress-text';
  wrap.append(bar, label);
  return wrap;
}

function detailsOf(b: Batch): Node[] {
  const facts: [string, string][] = [
    ['Endpoint', b.endpoint],
    ['Input file', b.input_file_id],
    ['Output file', b.output_file_id ?? '–'],
    ['Error file', b.error_file_id ?? '–'],
    ['Window ends', when(b.expires_at)],
  ];
  if (b.projected_completion_at !== null) facts.push(['Projected end', when(b.projected_completion_at)]);
  for (const [k, v] of Object.entries(b.metadata ?? {})) facts.push([`metadata.${k}`, v]);
  const dl = document.createElement('dl');
  dl.className = 'batch-facts';
  for (const [k, v] of facts) {
    const div = document.createElement('div');
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    div.append(dt, dd);
    dl.append(div);
  }
  // A box of its own: the details take the row's width instead of widening the table to theirs.
  const box = document.createElement('div');
  box.className = 'batch-more';
  box.append(dl);
  if (b.completion_window_at_risk) {
    const p = document.createElement('p');
    p.className = 'error';
    p.textContent = 'At its current pace this batch ends after its completion window: the requests still unfinished then will expire.';
    box.append(p);
  }
  const errors = b.errors?.data ?? [];
  if (errors.length > 0) box.append(errorTable(errors));
  return [box];
}

function errorTable(errors: BatchError[]): HTMLTableElement {
  const table = document.createElement('table');
  table.className = 'batch-errors';
  table.dataset.testid = 'batch-errors';
  table.createCaption().textContent = 'Validation errors';
  const head = table.createTHead().insertRow();
  for (const h of ['Line', 'Code', 'Message']) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = h;
    head.append(th);
  }
  const body = table.createTBody();
  for (const e of errors) {
    const tr = body.insertRow();
    tr.dataset.line = e.line === null ? '' : String(e.line);
    tr.insertCell().textContent = e.line === null ? '–' : String(e.line);
    tr.insertCell().textContent = e.code;
    const message = tr.insertCell();
    message.textContent = e.message;
    if (e.param) message.append(' ', span('muted', `(${e.param})`));
  }
  return table;
}

function button(text: string, className: string, testid: string): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = className;
  b.textContent = text;
  b.dataset.testid = testid;
  return b;
}

function span(className: string, text: string): HTMLSpanElement {
  const s = document.createElement('span');
  s.className = className;
  s.textContent = text;
  return s;
}

export function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Batch times are Unix seconds, and a batch may be days old: the date too. */
function when(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}
