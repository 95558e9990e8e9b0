import { execFileSync, spawnSync } from 'node:child_process'

/** A command a test needs, and the Debian package that provides it. */
export interface Requirement {
  command: string
  debianPackage: string
}

let aptUpdated = false

function hasCommand (command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

/**
 * Makes sure every command is on the PATH. Missing Debian packages are installed when
 * running as root (apt-get update runs once); otherwise this throws one line naming what
 * to install. Nothing is ever silently skipped.
 */
export function requireCommands (requirements: Requirement[]): void {
  const missing = requirements.filter((r) => !hasCommand(r.command))
  if (missing.length === 0) return
  const packages = [...new Set(missing.map((r) => r.debianPackage))]
  if (process.getuid?.() !== 0) {
    throw new Error(`missing ${missing.map((r) => r.command).join(', ')}: run "sudo apt-get install -y ${packages.join(' ')}"`)
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  if (!aptUpdated) {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env })
    aptUpdated = true
  }
  execFileSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: 'ignore', env })
  const still = missing.filter((r) => !hasCommand(r.command))
  if (still.length > 0) throw new Error(`apt-get installed ${packages.join(' ')} but ${still.map((r) => r.command).join(', ')} is still missing`)
}
