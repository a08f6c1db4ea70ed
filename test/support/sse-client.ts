import type { SseEvent } from './requests';

/**
 * An SSE reader that hands over each event as it arrives (test/support/requests.ts
 * readSse waits for the whole body), so a test can act mid-stream: kill a
 * process after the tenth token, then resume elsewhere with Last-Event-ID.
 */
export async function streamSse(res: Response, onEvent: (e: SseEvent) => void): Promise<'ended' | 'broken'> {
  if (!res.body) throw new Error(`no body (status ${res.status})`);
  // Node's web streams are async iterable; the DOM typings that say so are not loaded here.
  const body = res.body as unknown as AsyncIterable<Uint8Array>;
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for await (const chunk of body) {
      buf += decoder.decode(chunk, { stream: true });
      let cut = buf.indexOf('\n\n');
      while (cut >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const ev = parseBlock(block);
        if (ev) onEvent(ev);
        cut = buf.indexOf('\n\n');
      }
    }
  } catch {
    // The server went away mid-stream (a killed gateway): the caller resumes.
    return 'broken';
  }
  return 'ended';
}

function parseBlock(block: string): SseEvent | null {
  const ev: SseEvent = { data: '' };
  const data: string[] = [];
  let any = false;
  for (const line of block.split('\n')) {
    // Comment lines (keep-alives) carry nothing.
    if (line.startsWith(':') || line === '') continue;
    any = true;
    if (line.startsWith('id: ')) ev.id = line.slice(4);
    else if (line.startsWith('event: ')) ev.event = line.slice(7);
    else if (line.startsWith('data: ')) data.push(line.slice(6));
  }
  if (!any) return null;
  ev.data = data.join('\n');
  return ev;
}
