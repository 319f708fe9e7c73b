/** `qa.process`: the questions of one node, and checking a user's answer against one of them. */

export type AnswerType = 'text' | 'number' | 'choice';

export interface QaChoice {
  value: string;
  label: string;
}

export interface QaQuestion {
  id: string;
  prompt: string;
  answerType: AnswerType;
  maxWords?: number;
  choices: QaChoice[];
  optional: boolean;
}

export interface QaSpec {
  welcome?: string;
  questions: QaQuestion[];
}

const ANSWER_TYPES: readonly string[] = ['text', 'number', 'choice'];

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A problem with a `qa.process` config; `path` is under the operation key. */
export interface QaConfigProblem {
  path: (string | number)[];
  message: string;
}

/** Reads and checks a `qa.process` config. Problems are reported, the usable part is returned. */
export function readQaSpec(config: unknown): { spec: QaSpec; problems: QaConfigProblem[] } {
  const problems: QaConfigProblem[] = [];
  const spec: QaSpec = { questions: [] };
  if (!isRecord(config)) {
    problems.push({ path: [], message: 'qa.process needs a mapping with a welcome or a list of questions' });
    return { spec, problems };
  }
  if (config['welcome'] !== undefined) {
    if (typeof config['welcome'] === 'string') spec.welcome = config['welcome'];
    else problems.push({ path: ['welcome'], message: 'qa.process welcome must be a string' });
  }
  const qs = config['questions'];
  // Upstream accepts a welcome-only node: it greets and moves on without asking.
  if (qs === undefined && spec.welcome !== undefined) return { spec, problems };
  if (!Array.isArray(qs) || (qs.length === 0 && spec.welcome === undefined)) {
    problems.push({
      path: qs === undefined ? [] : ['questions'],
      message: 'qa.process needs a welcome or a non-empty list of questions',
    });
    return { spec, problems };
  }
  const ids = new Set<string>();
  qs.forEach((q: unknown, i) => {
    if (!isRecord(q)) {
      problems.push({
        path: ['questions', i],
        message: `question ${i + 1} must be a mapping with id and prompt`,
      });
      return;
    }
    const id = q['id'];
    const prompt = q['prompt'];
    if (typeof id !== 'string' || id === '') {
      problems.push({ path: ['questions', i], message: `question ${i + 1} needs an 'id'` });
      return;
    }
    if (ids.has(id))
      problems.push({ path: ['questions', i, 'id'], message: `duplicate question id '${id}'` });
    ids.add(id);
    if (typeof prompt !== 'string' || prompt === '') {
      problems.push({ path: ['questions', i], message: `question '${id}' needs a 'prompt'` });
      return;
    }
    const type = q['answer_type'] ?? 'text';
    if (typeof type !== 'string' || !ANSWER_TYPES.includes(type)) {
      problems.push({
        path: ['questions', i, 'answer_type'],
        message: `question '${id}': answer_type must be one of: ${ANSWER_TYPES.join(', ')}`,
      });
      return;
    }
    const question: QaQuestion = {
      id,
      prompt,
      answerType: type as AnswerType,
      choices: [],
      optional: q['optional'] === true,
    };
    const mw = q['max_words'];
    if (mw !== undefined) {
      if (typeof mw === 'number' && Number.isInteger(mw) && mw >= 1) question.maxWords = mw;
      else
        problems.push({
          path: ['questions', i, 'max_words'],
          message: `question '${id}': max_words must be a positive integer`,
        });
    }
    const choiceKey = q['choices'] !== undefined ? 'choices' : 'options';
    const rawChoices = q[choiceKey];
    if (rawChoices !== undefined) {
      if (!Array.isArray(rawChoices)) {
        problems.push({
          path: ['questions', i, choiceKey],
          message: `question '${id}': ${choiceKey} must be a list`,
        });
      } else {
        for (const c of rawChoices) {
          if (typeof c === 'string' || typeof c === 'number' || typeof c === 'boolean') {
            question.choices.push({ value: String(c), label: String(c) });
          } else if (isRecord(c) && (typeof c['value'] === 'string' || typeof c['value'] === 'number')) {
            const value = String(c['value']);
            question.choices.push({ value, label: typeof c['label'] === 'string' ? c['label'] : value });
          } else {
            problems.push({
              path: ['questions', i, choiceKey],
              message: `question '${id}': each choice is a string or {value, label}`,
            });
            break;
          }
        }
      }
    }
    if (question.answerType === 'choice' && question.choices.length === 0) {
      problems.push({
        path: ['questions', i],
        message: `question '${id}' is a choice question without choices`,
      });
    }
    spec.questions.push(question);
  });
  return { spec, problems };
}

export type AnswerCheck = { ok: true; value: string | number | null } | { ok: false; problem: string };

function countWords(s: string): number {
  return s.split(/\s+/).filter(Boolean).length;
}

const NUMBER = /^[+-]?(?:\d+(?:[.,]\d+)?|[.,]\d+)$/;

export function checkAnswer(q: QaQuestion, rawAnswer: string): AnswerCheck {
  const answer = rawAnswer.trim();
  if (answer === '') {
    return q.optional ? { ok: true, value: null } : { ok: false, problem: 'I did not get an answer.' };
  }
  switch (q.answerType) {
    case 'number': {
      if (!NUMBER.test(answer)) return { ok: false, problem: `"${clip(answer)}" is not a number.` };
      return { ok: true, value: Number(answer.replace(',', '.')) };
    }
    case 'choice': {
      const lower = answer.toLowerCase();
      const byName = q.choices.find(
        (c) => c.value.toLowerCase() === lower || c.label.toLowerCase() === lower,
      );
      if (byName) return { ok: true, value: byName.value };
      if (/^\d+$/.test(answer)) {
        const byIndex = q.choices[Number(answer) - 1];
        if (byIndex) return { ok: true, value: byIndex.value };
      }
      return {
        ok: false,
        problem: `"${clip(answer)}" is not one of the choices: ${q.choices.map((c) => c.label).join(', ')}.`,
      };
    }
    default: {
      const words = countWords(answer);
      if (q.maxWords !== undefined && words > q.maxWords) {
        return {
          ok: false,
          problem: `Please answer in at most ${q.maxWords} word${q.maxWords === 1 ? '' : 's'} (you used ${words}).`,
        };
      }
      return { ok: true, value: answer };
    }
  }
}

/** Keeps echoed answers short in replies. */
function clip(s: string): string {
  return s.length > 40 ? s.slice(0, 39) + '…' : s;
}
