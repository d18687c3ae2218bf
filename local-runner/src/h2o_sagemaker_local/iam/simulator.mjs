// Evaluates IAM requests with @cloud-copilot/iam-simulate: one JSON simulation per stdin line, one JSON result per
// stdout line, in order. argv[2] is the node_modules folder holding the simulator.
import { createRequire } from 'node:module'
import path from 'node:path'
import readline from 'node:readline'
import { pathToFileURL } from 'node:url'

const require = createRequire(path.join(process.argv[2], 'resolver.js'))
const { runSimulation } = await import(pathToFileURL(require.resolve('@cloud-copilot/iam-simulate')).href)

const statements = (analysis, kind) =>
  (analysis?.[kind] ?? []).map((item) => ({ policy: item.policyId ?? 'resource policy', sid: item.explain?.identifier ?? null, index: item.statement?.index?.() ?? null }))

for await (const line of readline.createInterface({ input: process.stdin })) {
  let answer
  try {
    const outcome = await runSimulation(JSON.parse(line), { simulationMode: 'Strict' })
    if (outcome.resultType === 'error') {
      answer = { decision: 'Error', errors: outcome.errors }
    } else {
      const results = outcome.resultType === 'single' ? [outcome.result] : outcome.results
      const identity = results.map((result) => result.analysis?.identityAnalysis)
      const resource = results.map((result) => result.analysis?.resourceAnalysis)
      answer = {
        decision: outcome.overallResult,
        allowedBy: [...identity.flatMap((a) => statements(a, 'allowStatements')), ...resource.flatMap((a) => statements(a, 'allowStatements'))],
        deniedBy: [...identity.flatMap((a) => statements(a, 'denyStatements')), ...resource.flatMap((a) => statements(a, 'denyStatements'))],
        ignoredContextKeys: results.flatMap((result) => result.ignoredContextKeys ?? []),
      }
    }
  } catch (error) {
    answer = { decision: 'Error', errors: { message: String(error) } }
  }
  process.stdout.write(JSON.stringify(answer) + '\n')
}
