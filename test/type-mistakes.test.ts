// The compile-time tests must fail for the reason they name. Each `@ts-expect-error TSnnnn`
// in types/*.test-d.ts is removed and the files are compiled with the project's own
// compiler options: the guarded line must then fail with that code, and nothing else may
// fail. A directive kept quiet by an unrelated error (a typo in the test itself) fails here.
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { t as tap, test } from 'tap'
import ts from 'typescript'
import { fromRoot } from './fixtures/browser.js'

// A second compilation of the typed files: about as long as the project's own tsc run, which
// on a busy machine is longer than the suite's 120 s per file
tap.setTimeout(300_000)

const DIRECTIVE = /\/\/ @ts-expect-error (TS(\d+))? ?(.*)$/

interface Expectation { line: number, code: number | undefined, reason: string }

test('every expect-error in types/ guards a real error of the code it names', async (t) => {
  const root = fileURLToPath(fromRoot(''))
  const config = ts.getParsedCommandLineOfConfigFile(`${root}tsconfig.json`, {}, {
    ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')) }
  })
  if (config === undefined) throw new Error('tsconfig.json did not parse')
  const files = readdirSync(`${root}types`).filter((f) => f.endsWith('.test-d.ts')).map((f) => `${root}types/${f}`)
  t.ok(files.length >= 2, `compile-time test files: ${files.map((f) => f.slice(root.length)).join(', ')}`)

  const expected = new Map<string, Expectation[]>()
  const stripped = new Map<string, string>()
  for (const file of files) {
    const lines = readFileSync(file, 'utf8').split('\n')
    const marks: Expectation[] = []
    lines.forEach((text, i) => {
      const m = DIRECTIVE.exec(text)
      if (m === null) return
      // The directive guards the next line
      marks.push({ line: i + 1, code: m[2] === undefined ? undefined : Number(m[2]), reason: m[3] })
      lines[i] = text.replace('@ts-expect-error', '(stripped)')
    })
    expected.set(file, marks)
    stripped.set(file, lines.join('\n'))
  }

  const host = ts.createCompilerHost(config.options)
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (fileName, language, onError, shouldCreate) => {
    const text = stripped.get(fileName)
    return text === undefined ? getSourceFile(fileName, language, onError, shouldCreate) : ts.createSourceFile(fileName, text, language)
  }
  const program = ts.createProgram({ rootNames: files, options: config.options, host })
  // Only these files are checked (the project's own tsc run covers the rest)
  const diagnostics = files.flatMap((f) => {
    const sf = program.getSourceFile(f)
    if (sf === undefined) throw new Error(`${f} is not in the program`)
    return [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)]
  })

  for (const file of files) {
    const name = file.slice(root.length)
    const mine = diagnostics.filter((d) => d.file?.fileName === file && d.start !== undefined)
    const at = (d: ts.Diagnostic): number => (d.file as ts.SourceFile).getLineAndCharacterOfPosition(d.start as number).line
    const marks = expected.get(file) ?? []
    t.ok(marks.length > 0, `${name} has expect-error cases`)
    for (const mark of marks) {
      const here = mine.filter((d) => at(d) === mark.line)
      t.ok(mark.code !== undefined, `${name}:${mark.line + 1} names the error code it expects (${mark.reason})`)
      t.ok(here.some((d) => d.code === mark.code),
        `${name}:${mark.line + 1} ${mark.reason}: TS${mark.code ?? '?'} (got ${here.map((d) => `TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ').slice(0, 120)}`).join('; ') || 'no error'})`)
    }
    const guarded = new Set(marks.map((m) => m.line))
    const stray = mine.filter((d) => !guarded.has(at(d)))
    t.same(stray.map((d) => `${name}:${at(d) + 1} TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`), [], `${name} has no other error`)
  }
})
