import { apiKey, getJson } from './api';
import { BatchesView } from './batches';
import { ClusterView } from './cluster';
import { byId, setText } from './dom';
import { setUpPlayground } from './playground';

/**
 * The FastVLM web console: a playground (image + question → streamed answer),
 * a cluster view and the tenant's batches, switched by the URL's hash so that
 * each view has a link and the back button works.
 */
const VIEWS = ['playground', 'cluster', 'batches'] as const;
type View = (typeof VIEWS)[number];
const TITLES: Record<View, string> = { playground: 'Playground', cluster: 'Cluster', batches: 'Batches' };

const cluster = new ClusterView();
const batches = new BatchesView();

function current(): View {
  const hash = location.hash.slice(1);
  return VIEWS.find((v) => v === hash) ?? 'playground';
}

function show(view: View, focus: boolean): void {
  for (const v of VIEWS) {
    byId(`view-${v}`, HTMLElement).hidden = v !== view;
    const link = byId(`nav-${v}`, HTMLAnchorElement);
    if (v === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${TITLES[view]} · FastVLM console`;
  if (view === 'cluster') cluster.show();
  else cluster.hide();
  if (view === 'batches') batches.show();
  else batches.hide();
  // Moving focus to the new heading tells screen readers and keyboard users where they are.
  if (focus) byId(`h-${view}`, HTMLHeadingElement).focus();
}

/** The served model's name in the header, once a key can ask for it. */
function showModel(): void {
  if (!apiKey.get()) return setText('model-name', '');
  getJson<{ data: { id: string }[] }>('/v1/models').then(
    (m) => setText('model-name', m.data[0]?.id ?? ''),
    () => setText('model-name', ''),
  );
}

function setUpKey(): void {
  const form = byId('key-form', HTMLFormElement);
  const input = byId('api-key', HTMLInputElement);
  input.value = apiKey.get();
  setText('key-status', input.value ? 'Key set for this tab.' : 'No key yet.');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (key) apiKey.set(key);
    else apiKey.clear();
    setText('key-status', key ? 'Key set for this tab.' : 'No key yet.');
    cluster.reset();
    batches.reset();
    showModel();
  });
  byId('key-forget', HTMLButtonElement).addEventListener('click', () => {
    apiKey.clear();
    input.value = '';
    setText('key-status', 'Key forgotten.');
    cluster.reset();
    batches.reset();
  });
}

setUpKey();
setUpPlayground();
showModel();
show(current(), false);
window.addEventListener('hashchange', () => show(current(), true));
