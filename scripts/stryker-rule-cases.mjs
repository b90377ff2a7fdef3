// A mutation-testing ignorer (stryker.config.mjs): in a `defineRule({...})`, the cases and the
// prose (title, description, runbook, false positives) are not behaviour. A mutant there changes
// what the tests ask or what a person reads, not what the rule does.
const PROSE_AND_CASES = new Set(['cases', 'title', 'description', 'runbook', 'falsePositives']);

function isRuleDefinitionProperty(path) {
  const { node } = path;
  if (node.type !== 'ObjectProperty' || node.computed || node.key.type !== 'Identifier') return false;
  const call = path.parentPath?.parentPath?.node;
  return (
    call?.type === 'CallExpression' && call.callee.type === 'Identifier' && call.callee.name === 'defineRule'
  );
}

export const strykerPlugins = [
  {
    kind: 'Ignore',
    name: 'rule-cases',
    value: {
      shouldIgnore(path) {
        if (isRuleDefinitionProperty(path) && PROSE_AND_CASES.has(path.node.key.name))
          return 'rule cases and prose are not behaviour';
        return undefined;
      },
    },
  },
];
