import { getRequestListener } from '@hono/node-server'
import { createServer, request as httpRequest, type RequestListener } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface LoopbackServer {
  port: number
  url: string
  close(): Promise<void>
}

/** Serves a Node request listener, or a Fetch API handler, on 127.0.0.1 at a free port. */
export async function serveOnLoopback(handler: RequestListener | ((request: Request) => Response | Promise<Response>), kind: 'node' | 'fetch' = 'node'): Promise<LoopbackServer> {
  const server = createServer(kind === 'fetch' ? getRequestListener(handler as (request: Request) => Promise<Response>) : (handler as RequestListener))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()))
        server.closeAllConnections()
      }),
  }
}

export interface LoopbackResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  json<T = unknown>(): T
}

/**
 * One HTTP request to 127.0.0.1:`port` with any Host header (fetch may not set
 * Host), so `acme.localhost` reaches the local server as a browser's would.
 */
export function requestLoopback(port: number, options: { path?: string; host?: string; method?: string; headers?: Record<string, string>; body?: string }): Promise<LoopbackResponse> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      { host: '127.0.0.1', port, path: options.path ?? '/', method: options.method ?? 'GET', headers: { ...(options.host === undefined ? {} : { host: options.host }), ...options.headers } },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('error', reject)
        response.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8')
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body, json: () => JSON.parse(body) })
        })
      },
    )
    outgoing.on('error', reject)
    outgoing.end(options.body)
  })
}
