/**
 * Finds the AWS calls a TypeScript source makes, from its syntax tree: `new X(...)` where X is imported from an
 * `@aws-sdk/*` package and is a `…Command` or lib-storage's `Upload`, paginators (`paginateGetLogEvents` counts as
 * GetLogEventsCommand), and functions imported from `@aws-sdk/credential-providers`. Import aliases are followed, and
 * so is `const { XCommand } = await import('./module')` when that module re-exports X from an `@aws-sdk/*` package
 * (src/aws/sdk/, loaded on first use); comments and strings are ignored. Used by infra/permissions.test.ts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export interface SdkUse {
  /** Imported name: `StartBuildCommand`, `Upload`, `fromWebToken`, … */
  name: string;
  kind: 'command' | 'upload' | 'credential-provider' | 'unsupported';
  /** Package it comes from. */
  module: string;
}

/** `readModule` gives the text of the module a relative import() names (its specifier, from this file), if any. */
export function scanSource(fileName: string, text: string, readModule: (spec: string) => string | undefined = () => undefined): SdkUse[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const imported = new Map<string, { name: string; module: string }>();
  const uses: SdkUse[] = [];

  for (const stmt of source.statements) {
    if (!ts.isImportDeclaration(stmt) || !ts.isStringLiteral(stmt.moduleSpecifier)) continue;
    const module = stmt.moduleSpecifier.text;
    if (!module.startsWith('@aws-sdk/')) continue;
    const bindings = stmt.importClause?.namedBindings;
    if (bindings && ts.isNamedImports(bindings)) {
      for (const el of bindings.elements) {
        const name = (el.propertyName ?? el.name).text;
        imported.set(el.name.text, { name, module });
        // Aggregated clients (`new CodeBuild().startBuild()`) and waiters hide the call from this scan.
        if (/^waitUntil/.test(name) || isAggregatedClient(name, module)) uses.push({ name, kind: 'unsupported', module });
        if (module === '@aws-sdk/credential-providers') uses.push({ name, kind: 'credential-provider', module });
        const paginated = /^paginate(\w+)$/.exec(name);
        if (paginated) uses.push({ name: `${paginated[1]}Command`, kind: 'command', module });
      }
    } else if (bindings && ts.isNamespaceImport(bindings)) {
      uses.push({ name: `* as ${bindings.name.text}`, kind: 'unsupported', module });
    }
  }

  const visit = (node: ts.Node): void => {
    const loaded = lazyImport(node);
    if (loaded) {
      const reexported = sdkReexports(readModule(loaded.spec) ?? '');
      for (const el of loaded.names.elements) {
        const found = reexported.get((el.propertyName ?? el.name).getText(source));
        if (found && ts.isIdentifier(el.name)) imported.set(el.name.text, found);
      }
    }
    if (ts.isNewExpression(node) && ts.isIdentifier(node.expression)) {
      const imp = imported.get(node.expression.text);
      if (imp?.name.endsWith('Command')) uses.push({ name: imp.name, kind: 'command', module: imp.module });
      else if (imp?.name === 'Upload' && imp.module === '@aws-sdk/lib-storage') {
        uses.push({ name: 'Upload', kind: 'upload', module: imp.module });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return uses;
}

/** `const { … } = await import('<relative>')`: the specifier and the names taken. */
function lazyImport(node: ts.Node): { spec: string; names: ts.ObjectBindingPattern } | undefined {
  if (!ts.isVariableDeclaration(node) || !ts.isObjectBindingPattern(node.name) || !node.initializer || !ts.isAwaitExpression(node.initializer)) return undefined;
  const call = node.initializer.expression;
  if (!ts.isCallExpression(call) || call.expression.kind !== ts.SyntaxKind.ImportKeyword) return undefined;
  const [arg] = call.arguments;
  return arg && ts.isStringLiteral(arg) && arg.text.startsWith('.') ? { spec: arg.text, names: node.name } : undefined;
}

/** What a module re-exports from `@aws-sdk/*` packages (`export { X } from '@aws-sdk/…'`): the SDK's name and package, by exported name. */
function sdkReexports(text: string): Map<string, { name: string; module: string }> {
  const found = new Map<string, { name: string; module: string }>();
  for (const stmt of ts.createSourceFile('m.ts', text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS).statements) {
    if (!ts.isExportDeclaration(stmt) || !stmt.moduleSpecifier || !ts.isStringLiteral(stmt.moduleSpecifier)) continue;
    const module = stmt.moduleSpecifier.text;
    if (!module.startsWith('@aws-sdk/') || !stmt.exportClause || !ts.isNamedExports(stmt.exportClause)) continue;
    for (const el of stmt.exportClause.elements) found.set(el.name.text, { name: (el.propertyName ?? el.name).text, module });
  }
  return found;
}

function isAggregatedClient(name: string, module: string): boolean {
  // client-s3 exports S3 and S3Client; the first is the aggregated client.
  return module.startsWith('@aws-sdk/client-') && /^[A-Z][A-Za-z0-9]*$/.test(name) && !/(Client|Command|Exception|Error)$/.test(name)
    && module.replace('@aws-sdk/client-', '').replace(/-/g, '') === name.toLowerCase();
}

/** `.ts` files under `dir` (recursively), excluding declaration files, relative to `root` with POSIX separators. */
export function sourceFiles(root: string, dir = 'src'): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(child);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(child);
    }
  };
  walk(dir);
  return out.sort();
}

/** Every SDK use in the program's sources, keyed by file. */
export function scanProgram(root: string): Map<string, SdkUse[]> {
  const result = new Map<string, SdkUse[]>();
  for (const file of sourceFiles(root)) {
    const readModule = (spec: string) => {
      const target = path.join(root, path.dirname(file), `${spec}.ts`);
      return existsSync(target) ? readFileSync(target, 'utf8') : undefined;
    };
    const uses = scanSource(file, readFileSync(path.join(root, file), 'utf8'), readModule);
    if (uses.length > 0) result.set(file, uses);
  }
  return result;
}
