// HTML built with a tagged template that escapes every interpolated value unless it is already
// SafeHtml: text from the report (reasons, class names, settings) can never become markup, and
// markup from a trusted producer (our own templates, Vega's SVG) is passed through deliberately.

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text made safe for HTML element content and for quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => ENTITIES[character] ?? character);
}

export class SafeHtml {
  constructor(readonly markup: string) {}
  toString(): string {
    return this.markup;
  }
}

/** Markup the caller vouches for (our templates' output, SVG from Vega's escaping renderer). */
export function trustedHtml(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

/** One interpolated value: SafeHtml as is, arrays joined, nothing for null/undefined/false, text escaped. */
function render(value: unknown): string {
  if (value instanceof SafeHtml) return value.markup;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let markup = strings[0] ?? '';
  values.forEach((value, index) => {
    markup += render(value) + (strings[index + 1] ?? '');
  });
  return new SafeHtml(markup);
}
