import type { ConsoleAutoscaler } from '../overview-types';
import { byId, setText } from './dom';
import { clock } from './format';

/** A number as the scaler computed it, to two decimals at most (3.5, 1.25, 42). */
function decimal(v: number): string {
  return String(Number(v.toFixed(2)));
}

/** A term and its value; `note` is a qualifier in smaller type inside the value (measured or prior). */
function card(key: string, term: string, value: string, note?: string): HTMLDivElement {
  const div = document.createElement('div');
  div.dataset.signal = key;
  const dt = document.createElement('dt');
  dt.textContent = term;
  const dd = document.createElement('dd');
  dd.textContent = value;
  if (note) {
    const small = document.createElement('span');
    small.className = 'note';
    small.textContent = ` (${note})`;
    dd.append(small);
  }
  div.append(dt, dd);
  return div;
}

/**
 * The cluster view's Autoscaler panel: the scaler's latest decision (what the
 * chosen strategy asks for, what the others would, the mode and the forecast)
 * and the signals it decided on; or a line saying that no scaler reports.
 */
export function renderAutoscaler(a: ConsoleAutoscaler | null): void {
  const body = byId('autoscaler-body', HTMLDivElement);
  if (!a) {
    body.hidden = true;
    const cmd = document.createElement('code');
    cmd.textContent = 'npm start';
    byId('autoscaler-status', HTMLParagraphElement).replaceChildren(
      'No scaler is reporting: no decision in the last 30 s. Start one with ',
      cmd,
      ', which runs the scaler next to the gateway and a worker.',
    );
    return;
  }
  body.hidden = false;
  setText('autoscaler-status', `Decision for ${a.scaled_object} on queue ${a.queue} at ${clock(a.at)} · queue ${a.active ? 'active' : 'idle'}`);
  const chosen = a.desired.find((d) => d.strategy === a.strategy);

  const mode = card('mode', 'mode', a.mode);
  mode.classList.add(`mode-${a.mode}`);
  byId('autoscaler-decision', HTMLDListElement).replaceChildren(
    card('strategy', 'strategy', a.strategy),
    card('replicas', 'desired replicas', chosen ? String(chosen.replicas) : '–'),
    mode,
    card('forecast', 'forecast', a.forecast_rps === null ? 'learning' : `${decimal(a.forecast_rps)}/s`),
  );

  const rows = a.desired.map((d) => {
    const tr = document.createElement('tr');
    tr.dataset.strategy = d.strategy;
    const name = document.createElement('td');
    name.textContent = d.strategy;
    const replicas = document.createElement('td');
    replicas.textContent = String(d.replicas);
    if (d.strategy === a.strategy) {
      // Not by colour alone: the row says it in words too.
      tr.className = 'chosen';
      const tag = document.createElement('span');
      tag.className = 'tag';
      tag.textContent = 'chosen';
      name.append(' ', tag);
    }
    tr.append(name, replicas);
    return tr;
  });
  byId('autoscaler-desired', HTMLTableElement).tBodies[0]?.replaceChildren(...rows);

  const s = a.signals;
  byId('autoscaler-signals', HTMLDListElement).replaceChildren(
    card('queued', 'queued', String(s.queued)),
    card('active', 'active', String(s.active)),
    card('ready', 'ready', String(s.ready)),
    card('loading', 'loading', String(s.loading)),
    card('arrivals', 'arrivals/s', decimal(s.arrivals_per_second)),
    card('capacity', 'capacity / replica', `${decimal(s.replica_capacity)} jobs/s`, s.replica_capacity_measured ? 'measured' : 'prior'),
    card('startup', 'start-up', `${decimal(s.startup_seconds)} s`, s.startup_measured ? 'measured' : 'prior'),
  );
}
