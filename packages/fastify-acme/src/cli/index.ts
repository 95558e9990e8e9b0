import { AcmeError, ErrorCodes, isAcmeError } from '@fastify-acme/core'
import { CliError, ExitCode, isCommand, parseCommandLine, type CommandName } from './args.js'
import { doctorCommand } from './commands/doctor.js'
import { listCommand } from './commands/list.js'
import { exportCommand, importCommand } from './commands/pem.js'
import { renewCommand, revokeCommand } from './commands/renew.js'
import { createContext, type CliContext, type CliIo } from './context.js'
import { helpText } from './help.js'

export { ExitCode } from './args.js'

const COMMANDS: Record<Exclude<CommandName, 'help'>, (ctx: CliContext) => Promise<number>> = {
  list: listCommand,
  renew: renewCommand,
  revoke: revokeCommand,
  import: importCommand,
  export: exportCommand,
  doctor: doctorCommand,
}

const processIo: CliIo = {
  stdout: (text) => { process.stdout.write(text) },
  stderr: (text) => { process.stderr.write(text) },
}

/** Runs the CLI on `argv` (without node and the script) and resolves with the exit code. */
export async function main (argv: string[], env: Record<string, string | undefined> = process.env, io: CliIo = processIo): Promise<number> {
  const json = argv.includes('--json')
  try {
    const { command, args, values } = parseCommandLine(argv)
    if (command === undefined) {
      if (values.help === true) {
        io.stdout(helpText(undefined))
        return ExitCode.OK
      }
      // (with --json, one JSON document as for every other usage error; the help goes to stderr)
      if (json) return fail(new CliError('no command given', ExitCode.USAGE, 'ERR_USAGE'), json, io)
      io.stderr(helpText(undefined))
      return ExitCode.USAGE
    }
    if (command === 'help') {
      const topic = args[0]
      if (topic !== undefined && !isCommand(topic)) throw new CliError(`unknown command "${topic}"`, ExitCode.USAGE, 'ERR_USAGE')
      io.stdout(helpText(topic))
      return ExitCode.OK
    }
    if (values.help === true) {
      io.stdout(helpText(command))
      return ExitCode.OK
    }
    return await COMMANDS[command](createContext(args, values, env, io))
  } catch (err) {
    return fail(err, json, io)
  }
}

/** The bin entry: runs main() on process.argv and exits with its code. */
export async function run (): Promise<void> {
  // the first Ctrl-C stops the work and releases its locks (a lock left held makes the apps wait
  // out its lease); a second one ends the process at once
  const interrupted = new AbortController()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => interrupted.abort(new AcmeError(ErrorCodes.ABORTED, `interrupted (${signal})`)))
  }
  const code = await main(process.argv.slice(2), process.env, { ...processIo, signal: interrupted.signal })
  process.exitCode = code
  // a client that keeps a socket open (a Redis connection, a keep-alive agent) must not hold the CLI
  setTimeout(() => process.exit(code), 2000).unref()
}

function fail (err: unknown, json: boolean, io: CliIo): number {
  const exitCode = err instanceof CliError
    ? err.exitCode
    : isAcmeError(err, ErrorCodes.INVALID_OPTION) || isAcmeError(err, ErrorCodes.INVALID_IDENTIFIER) ? ExitCode.USAGE : ExitCode.FAILURE
  const code = err instanceof CliError || isAcmeError(err) ? err.code : 'ERR_UNEXPECTED'
  const message = err instanceof Error ? err.message : String(err)
  if (json) io.stdout(`${JSON.stringify({ ok: false, error: { code, message } }, null, 2)}\n`)
  io.stderr(`fastify-acme: ${message}${exitCode === ExitCode.USAGE ? '\nRun "fastify-acme --help" for usage.' : ''}\n`)
  return exitCode
}
