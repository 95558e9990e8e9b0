import { parseArgs, type ParseArgsConfig } from 'node:util'

/** Exit codes of the fastify-acme CLI; the help text documents them. */
export const ExitCode = {
  /** the command did what was asked (doctor: every check passed) */
  OK: 0,
  /** the command failed: CA, storage or file error (the message says which) */
  FAILURE: 1,
  /** bad command line or configuration: unknown command or option, missing argument, bad value */
  USAGE: 2,
  /** doctor ran and at least one check failed */
  PROBLEMS: 3,
  /** no stored certificate has the given name */
  NOT_FOUND: 4,
} as const

/** A failure with its exit code and a stable code for --json output. */
export class CliError extends Error {
  constructor (message: string, readonly exitCode: number, readonly code: string) {
    super(message)
  }
}

export function usageError (message: string): CliError {
  return new CliError(message, ExitCode.USAGE, 'ERR_USAGE')
}

type Options = NonNullable<ParseArgsConfig['options']>

/** Options every command takes. */
export const GLOBAL_OPTIONS = {
  storage: { type: 'string' },
  directory: { type: 'string' },
  email: { type: 'string' },
  'ca-bundle': { type: 'string' },
  'eab-kid': { type: 'string' },
  'agree-tos': { type: 'boolean' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} satisfies Options

/** Each command's own options. */
export const COMMAND_OPTIONS = {
  list: {},
  renew: {
    force: { type: 'boolean' },
    'http-port': { type: 'string' },
    'http-host': { type: 'string' },
    'key-type': { type: 'string' },
  },
  revoke: {
    reason: { type: 'string' },
    yes: { type: 'boolean' },
  },
  import: {
    cert: { type: 'string' },
    chain: { type: 'string' },
    key: { type: 'string' },
    force: { type: 'boolean' },
  },
  export: {
    out: { type: 'string' },
    'include-key': { type: 'boolean' },
    force: { type: 'boolean' },
  },
  doctor: {
    ports: { type: 'string' },
    host: { type: 'string' },
    'dns-server': { type: 'string' },
    name: { type: 'string', multiple: true },
    'timeout-ms': { type: 'string' },
  },
  help: {},
} satisfies Record<string, Options>

export type CommandName = keyof typeof COMMAND_OPTIONS
export type OptionValues = Record<string, string | boolean | string[] | undefined>

export interface ParsedCommandLine {
  /** undefined when none was given (then help is shown) */
  command?: CommandName
  /** arguments after the command */
  args: string[]
  values: OptionValues
}

export function isCommand (name: string | undefined): name is CommandName {
  return name !== undefined && Object.hasOwn(COMMAND_OPTIONS, name)
}

/**
 * Parses argv strictly: the union of every option is accepted by the parser, then each option
 * is checked against the command it was given to. Throws a usage CliError.
 */
export function parseCommandLine (argv: string[]): ParsedCommandLine {
  const all: Options = { ...GLOBAL_OPTIONS }
  for (const options of Object.values(COMMAND_OPTIONS)) Object.assign(all, options)
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: all, strict: true, allowPositionals: true })
  } catch (err) {
    throw usageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''))
  }
  const [first, ...args] = parsed.positionals
  const values = parsed.values as OptionValues
  if (first === undefined) return { args: [], values }
  if (!isCommand(first)) throw usageError(`unknown command "${first}"; commands: ${Object.keys(COMMAND_OPTIONS).join(', ')}`)
  const allowed = new Set([...Object.keys(GLOBAL_OPTIONS), ...Object.keys(COMMAND_OPTIONS[first])])
  for (const option of Object.keys(values)) {
    if (!allowed.has(option)) throw usageError(`option --${option} does not apply to "${first}" (see fastify-acme ${first} --help)`)
  }
  return { command: first, args, values }
}

/** The one `<name>` argument of a command. */
export function nameArgument (command: string, args: string[]): string {
  if (args.length !== 1 || !args[0]) throw usageError(`${command} needs exactly one certificate name: fastify-acme ${command} <name>`)
  return args[0]
}

/** A string option's value, or undefined. */
export function stringOption (values: OptionValues, name: string): string | undefined {
  const value = values[name]
  return typeof value === 'string' ? value : undefined
}

/** A TCP port from a string option (1-65535). */
export function portValue (option: string, value: string): number {
  const port = Number(value)
  if (!/^\d+$/.test(value) || port < 1 || port > 65535) throw usageError(`--${option} must be a port number (1-65535), got "${value}"`)
  return port
}
