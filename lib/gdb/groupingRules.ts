/**
 * Grouping rules an operator adds without a release: which frames are noise
 * (never in a signature), which are the program's own ("in-app") or not,
 * and how many frames a signature takes. Socorro's sentinel/skip lists and
 * Sentry's stack trace rules answer the same need: a team's own assert or
 * logging wrapper, an allocator it links, a vendored library installed
 * outside the system directories.
 *
 * A rules file is JSON (SIGNATURE_RULES names it; `signature explain
 * --rules FILE` tries one out):
 *
 *     {
 *       "skip":       [{ "function": "^log_fatal$" }, { "module": "/libjemalloc\\.so" }],
 *       "in_app":     [{ "function_prefix": "myco::" }, { "module_prefix": "/opt/myco/" }],
 *       "not_in_app": [{ "module_prefix": "/opt/myco/vendor/" }],
 *       "max_frames": 5
 *     }
 *
 * A matcher has one or more of `function` (a regular expression), `function_prefix`,
 * `module` (a regular expression), `module_prefix`; it matches a frame when all its
 * keys do. `function` is matched against the frame as it reads in a signature
 * (`clock_nanosleep`, not `__GI___clock_nanosleep`; `libfoo.so+0x1a2b` for an
 * unsymbolized frame), `module` against the frame's module path (the
 * executable's path for the executable's own frames).
 *
 * The rules are data here: compiled once (a bad regular expression is an
 * error naming the entry), applied by signature.ts's explainSignature(),
 * the one pure function that decides every frame.
 */
import * as z from "zod";

/** How many frames a signature takes when the rules say nothing. */
export const DEFAULT_SIGNATURE_FRAMES = 5;
/** The most `max_frames` may be: a longer signature only splits groups. */
export const MAX_SIGNATURE_FRAMES = 64;

const MatcherFields = z
  .object({
    function: z.string().min(1).optional(),
    function_prefix: z.string().min(1).optional(),
    module: z.string().min(1).optional(),
    module_prefix: z.string().min(1).optional(),
  })
  .strict();
/** The keys a matcher may have (docs/api.md's table is checked against them). */
export const MATCHER_KEYS: readonly string[] = Object.keys(MatcherFields.shape);
const MatcherSchema = MatcherFields.refine((m) => Object.keys(m).length > 0, { message: "a matcher needs function, function_prefix, module or module_prefix" });

/** The rules file's shape (JSON). */
export const GroupingRulesSchema = z
  .object({
    skip: z.array(MatcherSchema).default([]),
    in_app: z.array(MatcherSchema).default([]),
    not_in_app: z.array(MatcherSchema).default([]),
    max_frames: z.number().int().min(1).max(MAX_SIGNATURE_FRAMES).optional(),
  })
  .strict();
/** A rules file as written (every list optional). */
export type GroupingRulesInput = z.input<typeof GroupingRulesSchema>;
/** A rules file after validation: plain data, what the configuration holds. */
export type GroupingRulesData = z.output<typeof GroupingRulesSchema>;

/** One compiled matcher and the words that name it in `signature explain` (`skip[0] function /^log_fatal$/`). */
export interface FrameMatcher {
  name: string;
  matches(frame: { text: string; module: string | null }): boolean;
}

/** Compiled rules: what explainSignature() applies. */
export interface GroupingRules {
  skip: FrameMatcher[];
  inApp: FrameMatcher[];
  notInApp: FrameMatcher[];
  maxFrames: number;
}

/** The built-in behaviour: no extra rule, 5 frames. */
export const DEFAULT_GROUPING_RULES: GroupingRules = Object.freeze({ skip: [], inApp: [], notInApp: [], maxFrames: DEFAULT_SIGNATURE_FRAMES });

/** A rules file that cannot be used; the message names the entry and what is wrong. */
export class GroupingRulesError extends Error {
  override name = "GroupingRulesError";
}

/** Validates a parsed rules file (its JSON value); throws GroupingRulesError naming the bad entry. */
export function validateGroupingRules(value: unknown): GroupingRulesData {
  const r = GroupingRulesSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const where =
      issue.path.length > 0
        ? issue.path
            .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
            .join("")
            .replace(/^\./, "")
        : "the rules";
    throw new GroupingRulesError(`${where}: ${issue.message}`);
  }
  compileGroupingRules(r.data); // the regular expressions too
  return r.data;
}

/** Reads a rules file's text (JSON): validated data, or GroupingRulesError. */
export function parseGroupingRules(text: string): GroupingRulesData {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e: unknown) {
    throw new GroupingRulesError(`not JSON: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  return validateGroupingRules(value);
}

/** Compiles validated rules; a regular expression that does not compile is a GroupingRulesError naming it. */
export function compileGroupingRules(data: GroupingRulesData | null | undefined): GroupingRules {
  if (!data) return DEFAULT_GROUPING_RULES;
  return {
    skip: data.skip.map((m, i) => compileMatcher(m, `skip[${i}]`)),
    inApp: data.in_app.map((m, i) => compileMatcher(m, `in_app[${i}]`)),
    notInApp: data.not_in_app.map((m, i) => compileMatcher(m, `not_in_app[${i}]`)),
    maxFrames: data.max_frames ?? DEFAULT_SIGNATURE_FRAMES,
  };
}

function compileMatcher(m: z.output<typeof MatcherSchema>, where: string): FrameMatcher {
  const regex = (key: "function" | "module"): RegExp | null => {
    const source = m[key];
    if (source === undefined) return null;
    try {
      return new RegExp(source, "u");
    } catch (e: unknown) {
      throw new GroupingRulesError(`${where}.${key}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  };
  const fn = regex("function");
  const mod = regex("module");
  const parts = [
    m.function !== undefined ? `function /${m.function}/` : null,
    m.function_prefix !== undefined ? `function_prefix ${JSON.stringify(m.function_prefix)}` : null,
    m.module !== undefined ? `module /${m.module}/` : null,
    m.module_prefix !== undefined ? `module_prefix ${JSON.stringify(m.module_prefix)}` : null,
  ].filter((p) => p !== null);
  return {
    name: `${where} ${parts.join(" ")}`,
    matches({ text, module }) {
      if (fn && !fn.test(text)) return false;
      if (m.function_prefix !== undefined && !text.startsWith(m.function_prefix)) return false;
      if (mod && (module === null || !mod.test(module))) return false;
      if (m.module_prefix !== undefined && (module === null || !module.startsWith(m.module_prefix))) return false;
      return true;
    },
  };
}
