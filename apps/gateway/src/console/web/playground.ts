import { ApiError, streamChat, type Usage } from './api';
import { byId, setText } from './dom';
import { duration, rate } from './format';

/** The gateway refuses larger images anyway (MAX_IMAGE_BYTES); saying so here saves an upload. */
const MAX_IMAGE_BYTES = 15 * 1024 * 1024;
const ACCEPTED = ['image/jpeg', 'image/png', 'image/webp', 'image/gif'];

/**
 * Image in, question in, answer streamed out: the request the OpenAI SDKs
 * make (`stream: true` with usage), with time to first token and tokens per
 * second measured here, in the browser.
 */
export function setUpPlayground(): void {
  const drop = byId('drop-zone', HTMLButtonElement);
  const input = byId('image-input', HTMLInputElement);
  const preview = byId('preview', HTMLImageElement);
  const form = byId('ask-form', HTMLFormElement);
  const ask = byId('ask', HTMLButtonElement);
  const stop = byId('stop', HTMLButtonElement);
  const answer = byId('answer', HTMLOutputElement);
  let image: string | null = null;
  let running: AbortController | null = null;

  const load = (file: File | undefined): void => {
    setText('ask-error', '');
    if (!file) return;
    if (!ACCEPTED.includes(file.type)) return setText('ask-error', `${file.name} is not a JPEG, PNG, WebP or GIF image.`);
    if (file.size > MAX_IMAGE_BYTES) return setText('ask-error', `${file.name} is larger than 15 MiB.`);
    const reader = new FileReader();
    reader.addEventListener('load', () => {
      image = typeof reader.result === 'string' ? reader.result : null;
      preview.src = image ?? '';
      preview.alt = `Selected image: ${file.name}`;
      preview.hidden = image === null;
      setText('drop-help', 'Drop another image, or press to choose one');
      setText('image-name', `${file.name} (${Math.ceil(file.size / 1024)} KiB)`);
    });
    reader.addEventListener('error', () => setText('ask-error', `Could not read ${file.name}.`));
    reader.readAsDataURL(file);
  };

  drop.addEventListener('click', () => input.click());
  input.addEventListener('change', () => load(input.files?.[0]));
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    load(e.dataTransfer?.files[0]);
  });

  stop.addEventListener('click', () => running?.abort());
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (running) return;
    const question = byId('question', HTMLTextAreaElement).value.trim();
    if (!image) return setText('ask-error', 'Choose an image first.');
    if (!question) return setText('ask-error', 'Type a question.');
    running = new AbortController();
    ask.disabled = true;
    stop.disabled = false;
    void run(image, question, Number(byId('max-tokens', HTMLInputElement).value) || 64, answer, running.signal).finally(() => {
      running = null;
      ask.disabled = false;
      stop.disabled = true;
    });
  });
}

async function run(image: string, question: string, maxTokens: number, answer: HTMLOutputElement, signal: AbortSignal): Promise<void> {
  for (const id of ['stat-ttft', 'stat-tps', 'stat-prompt', 'stat-completion', 'stat-cache', 'stat-job']) setText(id, '–');
  setText('ask-error', '');
  answer.textContent = '';
  answer.dataset.state = 'streaming';
  answer.setAttribute('aria-busy', 'true');
  const sent = performance.now();
  let first: number | null = null;
  let last = sent;
  let usage: Usage | null = null;
  try {
    await streamChat(
      {
        messages: [{ role: 'user', content: [{ type: 'text', text: question }, { type: 'image_url', image_url: { url: image } }] }],
        max_tokens: maxTokens,
        stream: true,
        stream_options: { include_usage: true },
      },
      {
        onOpen: (res) => setText('stat-cache', res.headers.get('x-cache') ?? '–'),
        onDelta: (text, chunkId) => {
          last = performance.now();
          if (first === null) {
            first = last;
            setText('stat-ttft', duration(first - sent));
            // chatcmpl-<x> answers job_<x>; cached answers have no job.
            if (chunkId.startsWith('chatcmpl-') && !chunkId.startsWith('chatcmpl-cached')) setText('stat-job', `job_${chunkId.slice(9)}`);
          }
          answer.append(text);
        },
        onFinish: () => undefined,
        onUsage: (u) => {
          usage = u;
          setText('stat-prompt', String(u.prompt_tokens));
          setText('stat-completion', String(u.completion_tokens));
        },
      },
      signal,
    );
    const tokens = (usage as Usage | null)?.completion_tokens ?? 0;
    if (first !== null && tokens > 1 && last > first) setText('stat-tps', rate((tokens - 1) / ((last - first) / 1000)));
    answer.dataset.state = 'done';
  } catch (e) {
    answer.dataset.state = signal.aborted ? 'stopped' : 'error';
    if (!signal.aborted) setText('ask-error', e instanceof ApiError ? `${e.message} (${e.code})` : 'The request failed; is the gateway running?');
  } finally {
    answer.removeAttribute('aria-busy');
  }
}
