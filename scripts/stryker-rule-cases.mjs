// A mutation-testing ignorer (stryker.config.mjs): a rule's cases are the questions its tests ask,
// not behaviour, and its prose (title, description, runbook, false positives) is read by people.
// Left unmutated: those properties of `defineRule({...})`, helpers used only by the cases, and
// functions that build cases (declared to return `RuleCase[]`).
const PROSE_AND_CASES = new Set(['cases', 'title', 'description', 'runbook', 'falsePositives']);

/** A `key: value` property of the object passed to `defineRule`, named one of `names`. */
function isRuleProperty(path, names) {
  const { node } = path;
  if (node.type !== 'ObjectProperty' || node.computed || node.key.type !== 'Identifier') return false;
  if (!names.has(node.key.name)) return false;
  const call = path.parentPath?.parentPath?.node;
  return (
    call?.type === 'CallExpression' && call.callee.type === 'Identifier' && call.callee.name === 'defineRule'
  );
}

const CASES = new Set(['cases']);
const insideCases = (path) => path.findParent((p) => isRuleProperty(p, CASES)) !== null;

/** A top-level helper every use of which is inside a rule's cases or another such helper. */
function isCaseHelper(path, known = new Map()) {
  const { node } = path;
  const id = node.type === 'FunctionDeclaration' || node.type === 'VariableDeclarator' ? node.id : undefined;
  // A function declares its name in the scope around it; a variable in its own.
  const scope = node.type === 'FunctionDeclaration' ? path.scope.parent : path.scope;
  if (id?.type !== 'Identifier' || scope?.path.type !== 'Program') return false;
  if (known.has(node)) return known.get(node);
  known.set(node, false); // while deciding: a helper that uses itself is not proof of anything
  const refs = scope.getBinding(id.name)?.referencePaths ?? [];
  const inHelper = (ref) => {
    const top = topLevelDeclaration(ref);
    return top !== undefined && isCaseHelper(top, known);
  };
  const result = refs.length > 0 && refs.every((ref) => insideCases(ref) || inHelper(ref));
  known.set(node, result);
  return result;
}

/** The top-level function declaration or variable declarator (exported or not) around `path`. */
function topLevelDeclaration(path) {
  const atTop = (p) => p.parentPath?.isProgram() || p.parentPath?.parentPath?.isProgram();
  return (
    path.findParent((p) => (p.isFunctionDeclaration() || p.isVariableDeclarator()) && atTop(p)) ?? undefined
  );
}

/** `function x(...): RuleCase[]`. */
function buildsCases({ node }) {
  const type = node.type === 'FunctionDeclaration' ? node.returnType?.typeAnnotation : undefined;
  return type?.type === 'TSArrayType' && type.elementType.typeName?.name === 'RuleCase';
}

export const strykerPlugins = [
  {
    kind: 'Ignore',
    name: 'rule-cases',
    value: {
      shouldIgnore(path) {
        if (isRuleProperty(path, PROSE_AND_CASES)) return 'rule cases and prose are not behaviour';
        if (isCaseHelper(path) || buildsCases(path)) return 'builds rule cases, not behaviour';
        return undefined;
      },
    },
  },
];
