/**
 * The policy engine's rules and verdicts, as pure functions: parsing a tenant's
 * rule set, its constitution hash, and the evaluation of a prompt against it.
 * Patterns run on RE2 (re2js): matching takes time linear in the prompt, so a
 * pattern such as `^(a|a)+$` cannot stall the engine, and what RE2 cannot run
 * in linear time (backreferences, lookaround) is refused when the rule is set.
 */
import { createHash } from "node:crypto";
import { RE2JS } from "re2js";
import { FieldError } from "../../shared/http/errors.js";
import {
  expectArray,
  expectNumber,
  expectObject,
  expectOnlyKeys,
  expectString,
  fieldPath,
} from "../request-fields.js";

/** How bad a match is; informational, the weight decides. */
export const SEVERITIES = ["low", "medium", "high", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

/** The tenant whose rules apply to every tenant without its own. */
export const DEFAULT_TENANT = "default";

/** Tenant names accepted in rule files and in `/v1/policies/{tenant}`. */
export const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Longest excerpt of the matched text reported in a violation, in characters. */
export const EXCERPT_LENGTH = 80;

/**
 * Patterns are RE2 regular expressions, always matched case-insensitively (a
 * prompt-safety rule should not depend on case) on Unicode code points.
 */
const PATTERN_FLAGS = RE2JS.CASE_INSENSITIVE;

/** Longest pattern accepted, in characters. */
export const MAX_PATTERN_LENGTH = 1024;

/** Most rules in one tenant's rule set. */
export const MAX_RULES = 256;

/** Time one evaluation may take before the prompt is denied (fail closed), in milliseconds. */
export const EVALUATION_BUDGET_MS = 250;

/** One weighted rule, as written in the rules file and in PUT bodies. */
export interface PolicyRule {
  name: string;
  pattern: string;
  weight: number;
  severity: Severity;
  description: string;
}

/** A tenant's rule set: the prompt is denied when the matched weights sum to `threshold` or more. */
export interface TenantPolicy {
  threshold: number;
  rules: PolicyRule[];
}

/** A parsed rule set with its compiled patterns and its hash. */
export interface CompiledPolicy {
  policy: TenantPolicy;
  patterns: RE2JS[];
  /** sha256 hex of `policy` as canonical JSON (sorted keys, no whitespace). */
  constitutionHash: string;
}

/** The rules file: a free-text description and a rule set per tenant, `default` required. */
export interface PolicyFile {
  description: string;
  tenants: Record<string, TenantPolicy>;
}

/** One matched rule. */
export interface Violation extends PolicyRule {
  /** The matched text, at most {@link EXCERPT_LENGTH} characters. */
  excerpt: string;
}

/** The verdict on one prompt. */
export interface Verdict {
  allowed: boolean;
  /** Sum of the matched weights, rounded to 6 decimals so `0.1 + 0.2` compares as written. */
  score: number;
  violations: Violation[];
  reasons: string[];
}

const RULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function parseRule(value: unknown, at: string): PolicyRule {
  const record = expectObject(value, at);
  expectOnlyKeys(record, ["name", "pattern", "weight", "severity", "description"], at);
  const pattern = expectString(record.pattern, fieldPath(at, "pattern"), { maxLength: MAX_PATTERN_LENGTH });
  const compiled = compilePattern(pattern, fieldPath(at, "pattern"));
  // A pattern matching the empty string matches every prompt: almost surely a mistake.
  if (compiled.test("")) throw new FieldError(fieldPath(at, "pattern"), "matches the empty string, so it would match every prompt");
  const severity = expectString(record.severity, fieldPath(at, "severity"));
  if (!(SEVERITIES as readonly string[]).includes(severity)) {
    throw new FieldError(fieldPath(at, "severity"), `must be one of ${SEVERITIES.join(", ")}`);
  }
  return {
    name: expectString(record.name, fieldPath(at, "name"), { pattern: RULE_NAME, patternHint: "1-64 letters, digits, '.', '_' or '-'" }),
    pattern,
    weight: expectNumber(record.weight, fieldPath(at, "weight"), { min: 0 }),
    severity: severity as Severity,
    description: expectString(record.description, fieldPath(at, "description"), { maxLength: 1000, allowEmpty: true }),
  };
}

/**
 * Parses a tenant's rule set (a PUT body or one entry of the rules file).
 * Throws {@link FieldError} naming the field under `at`: unknown keys, a
 * pattern that does not compile, a weight that is negative or not finite, a
 * threshold that is not above 0, duplicate rule names.
 */
export function parseTenantPolicy(value: unknown, at = ""): CompiledPolicy {
  const record = expectObject(value, at === "" ? "body" : at);
  expectOnlyKeys(record, ["threshold", "rules"], at);
  const threshold = expectNumber(record.threshold, fieldPath(at, "threshold"), { min: 0, exclusiveMin: true });
  const rules = expectArray(record.rules, fieldPath(at, "rules"), MAX_RULES, parseRule);
  const names = new Set<string>();
  for (const [index, rule] of rules.entries()) {
    if (names.has(rule.name)) throw new FieldError(`${fieldPath(at, "rules")}[${index}].name`, `repeats the rule name ${JSON.stringify(rule.name)}`);
    names.add(rule.name);
  }
  return compilePolicy({ threshold, rules });
}

/** Compiles a pattern on RE2; throws {@link FieldError} at `at` with RE2's reason when it cannot. */
function compilePattern(pattern: string, at: string): RE2JS {
  try {
    return RE2JS.compile(pattern, PATTERN_FLAGS);
  } catch (error) {
    const reason = (error as Error).message.replace(/^error parsing regexp: /, "");
    throw new FieldError(at, `does not compile: ${reason} (patterns run on RE2: linear time, so no backreferences or lookaround)`);
  }
}

function compilePolicy(policy: TenantPolicy): CompiledPolicy {
  return {
    policy,
    patterns: policy.rules.map((rule) => compilePattern(rule.pattern, rule.name)),
    constitutionHash: createHash("sha256").update(canonicalJson(policy)).digest("hex"),
  };
}

/** Parses the rules file; throws {@link FieldError} naming the field (e.g. `tenants.default.rules[1].weight`). */
export function parsePolicyFile(value: unknown): { description: string; tenants: Map<string, CompiledPolicy> } {
  const record = expectObject(value, "rules file");
  expectOnlyKeys(record, ["description", "tenants"], "");
  const description = expectString(record.description ?? "", "description", { maxLength: 10_000, allowEmpty: true });
  const tenants = new Map<string, CompiledPolicy>();
  for (const [tenant, policy] of Object.entries(expectObject(record.tenants, "tenants"))) {
    if (!TENANT_PATTERN.test(tenant)) throw new FieldError(`tenants.${tenant}`, "is not a valid tenant name");
    tenants.set(tenant, parseTenantPolicy(policy, `tenants.${tenant}`));
  }
  if (!tenants.has(DEFAULT_TENANT)) throw new FieldError(`tenants.${DEFAULT_TENANT}`, "is required");
  return { description, tenants };
}

/**
 * JSON with object keys sorted at every level and no whitespace (for these
 * values, strings and finite numbers, this is RFC 8785's canonical form), so
 * equal rule sets hash equally whatever the key order they were written in.
 */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * Evaluates `prompt` against a compiled rule set. Past `budgetMs` the
 * remaining rules are not run and the prompt is denied: a safety check that
 * could not finish fails closed, and its reasons say so.
 */
export function evaluatePrompt(compiled: CompiledPolicy, prompt: string, budgetMs = EVALUATION_BUDGET_MS): Verdict {
  const { rules, threshold } = compiled.policy;
  const violations: Violation[] = [];
  const deadline = performance.now() + budgetMs;
  let checked = 0;
  for (; checked < rules.length && performance.now() <= deadline; checked++) {
    const pattern = compiled.patterns[checked] as RE2JS;
    // test() runs on RE2's DFA without capture groups (about 5x faster than a matcher here); only a matching rule pays for the matcher that finds its excerpt.
    if (!pattern.test(prompt)) continue;
    const matcher = pattern.matcher(prompt);
    matcher.find();
    violations.push({ ...(rules[checked] as PolicyRule), excerpt: Array.from(matcher.group() ?? "").slice(0, EXCERPT_LENGTH).join("") });
  }
  const score = Math.round(violations.reduce((sum, v) => sum + v.weight, 0) * 1e6) / 1e6;
  const unchecked = rules.length - checked;
  const allowed = unchecked === 0 && score < threshold;
  const reasons = violations.map((v) => `${v.name} (${v.severity}, weight ${v.weight}): ${v.description}`);
  if (unchecked > 0) {
    reasons.unshift(`evaluation stopped after its ${budgetMs} ms budget with ${unchecked} of ${rules.length} rules unchecked: denied (fail closed)`);
  } else if (violations.length > 0) {
    reasons.unshift(allowed ? `score ${score} is below the threshold ${threshold}` : `score ${score} reached the threshold ${threshold}`);
  }
  return { allowed, score, violations, reasons };
}
