import type { IncomingMessage } from 'node:http'

/** A request as the frameworks hand it over: the Fetch API's `Request` (Hono, Next.js) or Node's `IncomingMessage` (Express, Fastify). */
export type HttpRequest = Request | IncomingMessage

/** What the tenant sources read of a request, the same for both kinds. */
export interface RequestView {
  /** The Host (authority) the client asked for, e.g. `acme.example.com:8080`, if any. */
  readonly host: string | undefined
  /** The path without the query string, e.g. `/t/acme/projects`. */
  readonly path: string
  /** One header's value (case-insensitive name); repeated headers are joined with ", " as Node does. */
  header(name: string): string | undefined
}

export function isFetchRequest(request: HttpRequest): request is Request {
  return typeof (request as Request).headers?.get === 'function'
}

export function requestView(request: HttpRequest): RequestView {
  if (isFetchRequest(request)) {
    const url = new URL(request.url)
    return { host: url.host === '' ? undefined : url.host, path: url.pathname, header: (name) => request.headers.get(name) ?? undefined }
  }
  // Express rewrites `url` below a mount point; `originalUrl` keeps what the client sent.
  const target = (request as IncomingMessage & { originalUrl?: unknown }).originalUrl
  const url = typeof target === 'string' ? target : (request.url ?? '/')
  const header = (name: string): string | undefined => {
    const value = request.headers[name.toLowerCase()]
    return Array.isArray(value) ? value.join(', ') : value
  }
  return { host: header('host') ?? header(':authority'), path: url.split(/[?#]/, 1)[0] ?? '/', header }
}
