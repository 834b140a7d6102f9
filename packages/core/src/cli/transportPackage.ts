/**
 * `MEPHISTO_TRANSPORT=<name>`: the Kafka client of a transport package. The CLI imports
 * `@mephisto/transport-<name>` (resolved from the app module, so the app's own install is used)
 * before the app module, so that the package registers its client and the app needs no import.
 */
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { DEFAULT_KAFKA_CLIENT, registeredTransports } from '../transport/createTransport.js'
import { UsageError } from './exitCodes.js'

/** Imports the transport package `MEPHISTO_TRANSPORT` names, if any and not yet registered. */
export async function importTransportPackage(appPath: string, env = process.env): Promise<void> {
  const name = env.MEPHISTO_TRANSPORT?.trim()
  if (!name || name === DEFAULT_KAFKA_CLIENT || registeredTransports().includes(name)) return
  const pkg = `@mephisto/transport-${name}`
  let resolved: string
  try {
    resolved = pathToFileURL(createRequire(appPath).resolve(pkg)).href
  } catch {
    // An ESM-only install resolves for `import` only: then from here (a workspace, a global install).
    if (
      await import(pkg).then(
        () => true,
        () => false,
      )
    )
      return
    throw new UsageError(
      `MEPHISTO_TRANSPORT=${name} names the Kafka client of ${pkg}, which is not installed where the app is ` +
        `(${appPath}): npm install ${pkg}, or unset MEPHISTO_TRANSPORT to use ${DEFAULT_KAFKA_CLIENT}`,
    )
  }
  await import(resolved)
}
