/**
 * `google.api.http` path templates, parsed once at start-up into segments
 * with the `:verb` kept apart, and matched against a request path segment by
 * segment, as grpc-gateway's runtime does (`httprule/parse.go`, `pattern.go`):
 *
 *     Template  = "/" Segments [ Verb ] ;
 *     Segments  = Segment { "/" Segment } ;
 *     Segment   = "*" | "**" | LITERAL | Variable ;
 *     Variable  = "{" FieldPath [ "=" Segments ] "}" ;
 *     FieldPath = IDENT { "." IDENT } ;
 *     Verb      = ":" LITERAL ;
 *
 * Pure functions: the transcoder binds the matched values into the request.
 */

/** One segment of a template: a literal, `*` (exactly one segment) or `**` (zero or more, last only). */
export type TemplateSegment = { kind: "literal"; value: string } | { kind: "wildcard" } | { kind: "deep-wildcard" };

/** A variable of a template: the field it binds and the segments `[start, end)` it covers. */
export interface TemplateVariable {
  fieldPath: string;
  start: number;
  end: number;
  /** True when it may span more than one segment (several segments or `**`): decoded keeping `%2F`. */
  multiSegment: boolean;
}

/** A parsed template. */
export interface PathTemplate {
  /** The template as written. */
  text: string;
  segments: TemplateSegment[];
  variables: TemplateVariable[];
  /** The custom verb without its `:`, or "" for none. */
  verb: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses `text`; throws an `Error` naming the template and the problem when it is malformed. */
export function parsePathTemplate(text: string): PathTemplate {
  const fail = (problem: string): never => {
    throw new Error(`path template ${JSON.stringify(text)}: ${problem}`);
  };
  if (!text.startsWith("/")) fail('must start with "/"');
  const { path, verb } = splitTemplateVerb(text.slice(1));
  if (verb !== undefined && (verb === "" || /[/{}*]/.test(verb))) fail(`verb ${JSON.stringify(verb)} is not a literal`);

  const segments: TemplateSegment[] = [];
  const variables: TemplateVariable[] = [];
  let pos = 0;
  const parseSegments = (inVariable: boolean) => {
    for (;;) {
      parseSegment(inVariable);
      if (path[pos] !== "/") return;
      pos += 1;
    }
  };
  const parseSegment = (inVariable: boolean) => {
    if (path[pos] === "{") {
      if (inVariable) fail("variables cannot nest");
      const close = path.indexOf("}", pos);
      const equals = path.indexOf("=", pos);
      const nameEnd = equals >= 0 && (close < 0 || equals < close) ? equals : close;
      if (nameEnd < 0) fail('variable without "}"');
      const fieldPath = path.slice(pos + 1, nameEnd);
      if (!fieldPath.split(".").every((name) => IDENT.test(name))) fail(`variable ${JSON.stringify(fieldPath)} is not a field path`);
      if (variables.some((v) => v.fieldPath === fieldPath)) fail(`field ${fieldPath} is bound twice`);
      const start = segments.length;
      pos = nameEnd;
      if (path[pos] === "=") {
        pos += 1;
        parseSegments(true);
      } else {
        segments.push({ kind: "wildcard" });
      }
      if (path[pos] !== "}") fail(`variable ${fieldPath} without "}"`);
      pos += 1;
      const multiSegment = segments.length - start > 1 || segments[start]?.kind === "deep-wildcard";
      variables.push({ fieldPath, start, end: segments.length, multiSegment });
      return;
    }
    let end = pos;
    while (end < path.length && !"/{}".includes(path[end] as string)) end += 1;
    const literal = path.slice(pos, end);
    pos = end;
    if (literal === "*") segments.push({ kind: "wildcard" });
    else if (literal === "**") segments.push({ kind: "deep-wildcard" });
    else if (literal === "" || literal.includes("*")) fail(`segment ${segments.length + 1} is empty or not a literal`);
    else segments.push({ kind: "literal", value: literal });
  };
  parseSegments(false);
  if (pos !== path.length) fail(`unexpected ${JSON.stringify(path[pos])} at ${pos + 1}`);
  const deep = segments.findIndex((s) => s.kind === "deep-wildcard");
  if (deep >= 0 && deep !== segments.length - 1) fail('"**" must be the last segment');
  return { text, segments, variables, verb: verb ?? "" };
}

/**
 * Splits the verb off a template (without its leading `/`): after the last
 * `:` of the last segment, or after the first `:` following a closing
 * variable (`{name}:verb`), as grpc-gateway's tokenizer does.
 */
function splitTemplateVerb(path: string): { path: string; verb: string | undefined } {
  let depth = 0;
  let lastSlash = -1;
  for (let i = 0; i < path.length; i += 1) {
    const c = path[i];
    if (c === "{") depth += 1;
    else if (c === "}") depth -= 1;
    else if (c === "/" && depth === 0) lastSlash = i;
  }
  const last = path.slice(lastSlash + 1);
  const closeVar = last.startsWith("{") ? last.indexOf("}") : -1;
  const colon = closeVar >= 0 ? last.indexOf(":", closeVar) : last.lastIndexOf(":");
  if (colon < 0) return { path, verb: undefined };
  const at = lastSlash + 1 + colon;
  return { path: path.slice(0, at), verb: path.slice(at + 1) };
}

/**
 * Matches a request path (percent-encoded, as in `URL.pathname`) against a
 * template: the template's verb is split off the last segment first, then
 * each segment is compared. Returns the raw (still encoded) value of each
 * variable by field path, segments joined with `/`, or `undefined` when the
 * path does not match. A template without a verb keeps a `:` in the last
 * segment as part of that segment.
 */
export function matchPathTemplate(template: PathTemplate, pathname: string): Map<string, string> | undefined {
  if (!pathname.startsWith("/")) return undefined;
  const components = pathname.slice(1).split("/");
  if (template.verb !== "") {
    const last = components[components.length - 1] as string;
    const suffix = `:${template.verb}`;
    if (!last.endsWith(suffix) || last.length === suffix.length) return undefined;
    components[components.length - 1] = last.slice(0, -suffix.length);
  }
  const { segments } = template;
  const deep = segments[segments.length - 1]?.kind === "deep-wildcard";
  if (deep ? components.length < segments.length - 1 : components.length !== segments.length) return undefined;
  // Where each template segment starts in `components`, plus where the last one ends.
  const starts: number[] = [];
  for (let i = 0; i < segments.length; i += 1) {
    const segment = segments[i] as TemplateSegment;
    const component = components[i];
    starts.push(i);
    if (segment.kind === "deep-wildcard") break;
    if (component === undefined || component === "") return undefined;
    if (segment.kind === "literal" && component !== segment.value) return undefined;
  }
  starts.push(deep ? components.length : segments.length);
  const values = new Map<string, string>();
  for (const variable of template.variables) {
    values.set(variable.fieldPath, components.slice(starts[variable.start], starts[variable.end]).join("/"));
  }
  return values;
}

/**
 * Decodes a variable's raw value (HttpRule's rules): a single-segment
 * variable has every percent-escape decoded; a multi-segment one every escape
 * but `%2F`, left as written so an encoded slash never reads as a separator.
 * Throws `URIError` on a malformed escape.
 */
export function decodePathValue(raw: string, multiSegment: boolean): string {
  if (!multiSegment) return decodeURIComponent(raw);
  // split() with a capturing group keeps each %2F at the odd indexes.
  return raw
    .split(/(%2F)/i)
    .map((part, i) => (i % 2 === 1 ? part : decodeURIComponent(part)))
    .join("");
}
