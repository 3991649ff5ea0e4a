import { Type } from '@sinclair/typebox';
import { stringEnum } from './string-enum.js';

/**
 * Request priorities (docs/priorities.md). A request is `low`, `normal` (the default) or `high`;
 * a model with `priorities: true` queues `low` and `high` on topics of their own, which workers
 * serve in that order, with aging so that low is never starved. A number is mapped onto the
 * three classes, so clients that think in numbers need not learn a fourth scheme.
 */
export const priorityClasses = ['low', 'normal', 'high'] as const;
export type PriorityClass = (typeof priorityClasses)[number];

/** The class of a request that states none; it stays on the topics every model had before priorities. */
export const defaultPriority: PriorityClass = 'normal';

/** The numbers a request may give instead of a class: 1 (least urgent) to 9 (most), 5 being normal. */
export const priorityNumbers = { minimum: 1, maximum: 9 } as const;

/** 1–3 low, 4–6 normal, 7–9 high. */
export function priorityClassOf(priority: PriorityClass | number): PriorityClass {
  if (typeof priority === 'string') return priority;
  return priority <= 3 ? 'low' : priority >= 7 ? 'high' : 'normal';
}

/**
 * Triton's and OIP's convention (parameters.priority): 0 is the default, 1 the highest, larger
 * numbers lower. Mapped as 0 → normal, 1 → high, 2 → normal, 3 and more → low.
 */
export function priorityClassOfOip(priority: number): PriorityClass {
  return priority === 1 ? 'high' : priority === 0 || priority === 2 ? 'normal' : 'low';
}

/** Serving order: the tier a class is served in, 0 first. */
export function priorityTier(priority: PriorityClass): number {
  return priority === 'high' ? 0 : priority === 'normal' ? 1 : 2;
}

/** `priority` in a submission: a class or a number of the stated range. */
export const priorityRequestSchema = Type.Union(
  [stringEnum(priorityClasses), Type.Integer(priorityNumbers)],
  {
    description:
      'low, normal (the default) or high; or 1 to 9 (higher is more urgent: 1–3 low, 4–6 normal, 7–9 high). On a model with ' +
      'priorities: true a high request is served ahead of queued normal and low ones',
  },
);

/** `priority` in a message or a record: the class. */
export const priorityClassSchema = stringEnum(priorityClasses, { description: 'The priority class the request asked for (absent: normal)' });
