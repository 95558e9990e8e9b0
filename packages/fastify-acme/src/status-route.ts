import { AcmeError, ErrorCodes, invalidOption, managerEventLog, renderStatusPage, STATUS_PAGE_HEADERS, type CertificateManager } from '@fastify-acme/core'
import type { FastifyInstance, RouteShorthandOptions } from 'fastify'
import { checkHooks } from './metrics-route.js'

/** The opt-in status page: certificates as timelines and the recent events, as one HTML page. */
export interface StatusPageOptions {
  /**
   * Required: the hook(s) that decide who may see the page (names, serials, CA error messages),
   * e.g. a bearer-token check that replies 401. The route is not registered without one.
   */
  onRequest: NonNullable<RouteShorthandOptions['onRequest']>
  /** URL path of the page (default '/.acme/status') */
  path?: string
  /** most recent events shown (default 100) */
  events?: number
  /** page title (default 'fastify-acme status') */
  title?: string
  /** reload the page every this many seconds, without a script (default 60; false: never) */
  refreshSeconds?: number | false
}

type ResolvedStatusPage = Required<Pick<StatusPageOptions, 'onRequest' | 'path' | 'events'>> & Pick<StatusPageOptions, 'title' | 'refreshSeconds'>

/** Validates the plugin's `statusPage` option; refuses a page without an auth hook. */
export function resolveStatusPage (option: StatusPageOptions | false | undefined): ResolvedStatusPage | undefined {
  if (option === undefined || option === false) return undefined
  if (typeof option !== 'object' || option === null) invalidOption('statusPage', option, '{ onRequest, path?, events?, title?, refreshSeconds? } or false')
  if (option.onRequest === undefined) {
    throw new AcmeError(ErrorCodes.INVALID_OPTION, 'option "statusPage.onRequest" is required: the status page shows names, serials and CA errors, so it needs an auth hook (pass one that checks a token or the source address)')
  }
  checkHooks('statusPage.onRequest', option.onRequest)
  const path = option.path ?? '/.acme/status'
  if (typeof path !== 'string' || !path.startsWith('/')) invalidOption('statusPage.path', path, "a URL path starting with '/'")
  const events = option.events ?? 100
  if (!Number.isSafeInteger(events) || events <= 0) invalidOption('statusPage.events', events, 'a positive integer')
  if (option.refreshSeconds !== undefined && option.refreshSeconds !== false &&
    (!Number.isSafeInteger(option.refreshSeconds) || option.refreshSeconds < 1)) {
    invalidOption('statusPage.refreshSeconds', option.refreshSeconds, 'a whole number of seconds (at least 1) or false')
  }
  return { ...option, path, events }
}

/** Starts recording events (core's managerEventLog) and serves the page behind the auth hook. */
export function registerStatusRoute (fastify: FastifyInstance, manager: CertificateManager, page: ResolvedStatusPage): void {
  const events = managerEventLog(manager, { size: page.events })
  fastify.route({
    method: 'GET',
    url: page.path,
    onRequest: page.onRequest,
    handler: async (_request, reply) => {
      const html = renderStatusPage({
        certificates: manager.list(),
        events: events.entries(),
        ...(page.title !== undefined ? { title: page.title } : {}),
        ...(page.refreshSeconds !== undefined ? { refreshSeconds: page.refreshSeconds } : {}),
      })
      return reply.headers({ ...STATUS_PAGE_HEADERS }).send(html)
    },
  })
}
