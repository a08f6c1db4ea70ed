/** Looks up an element the page must have, with its type checked. */
export function byId<T extends HTMLElement | SVGSVGElement>(id: string, type: { new (): T } | (abstract new () => T)): T {
  const e = document.getElementById(id);
  if (!(e instanceof type)) throw new Error(`the console page has no #${id}`);
  return e;
}

export function setText(id: string, text: string): void {
  byId(id, HTMLElement).textContent = text;
}
