import { WriteStream } from 'node:fs'
import { Socket } from 'node:net'
import type { Writable } from 'node:stream'
import type pg from 'pg'

/** The binary COPY header: the 11-byte signature, the flags and the header-extension length (0). */
const HEADER_BYTES = 19
/** Bytes gathered before a write: few writes, and well under V8's large-object size for the Buffer objects. */
const WRITE_BYTES = 64 * 1024

/**
 * Outputs done with a chunk when its write calls back (the bytes are with the OS),
 * so the buffer can be filled again: files, sockets, and stdout whatever it is (a
 * file, a pipe or a terminal). Not a PassThrough or the like: it keeps the chunk
 * until it is read.
 */
function releasesChunks(output: Writable): boolean {
  return output instanceof WriteStream || output instanceof Socket || output === process.stdout
}

/** What pg's connection gives a submittable: the simple-query send and the socket (paused for backpressure). */
interface CopyConnection {
  query(text: string): void
  stream: { pause(): void; resume(): void }
}

/**
 * Runs `COPY (<select of one non-null text column>) TO STDOUT (FORMAT binary)` and writes each row's
 * bytes to `output` as one line, honoring its backpressure (the socket is paused until it drains).
 * The rows never become JavaScript strings: a million rows through FETCH made a string and an array
 * each, and V8 let that garbage pile up to ~100 MB of RSS before collecting it; here they are copied
 * from the socket's buffers into write buffers. `onRow` gets the running row count. Resolves once the
 * output has called back for every write.
 */
export function copyLines(client: pg.Client, sql: string, output: Writable, onRow?: (rows: number) => void): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let connection: CopyConnection | undefined
    let headerLeft = HEADER_BYTES
    // The start of a row that the next CopyData message completes (the server sends one row per message, so rarely used).
    let partial: Buffer | null = null
    // Write buffers the output released, filled again: fresh ones are garbage until V8 next collects (~3 MB of RSS at a million rows).
    const spare: Buffer[] | null = releasesChunks(output) ? [] : null
    let buffer: Buffer = Buffer.allocUnsafe(WRITE_BYTES)
    let used = 0
    let rows = 0
    let failed = false
    let paused = false
    // Writes the output has not called back yet: the copy resolves once it has every byte, not when the server is done.
    let unwritten = 0
    let delivered: (() => void) | null = null
    const send = (bytes: Buffer, whole?: Buffer) => {
      unwritten += 1
      const written = () => {
        if (spare !== null && whole !== undefined) spare.push(whole)
        unwritten -= 1
        if (unwritten === 0) delivered?.()
      }
      if (output.write(bytes, written) || paused) return
      paused = true
      connection?.stream.pause()
      output.once('drain', () => {
        paused = false
        connection?.stream.resume()
      })
    }
    const flush = () => {
      if (used === 0) return
      send(buffer.subarray(0, used), buffer)
      buffer = spare?.pop() ?? Buffer.allocUnsafe(WRITE_BYTES)
      used = 0
    }
    const line = (bytes: Buffer) => {
      if (used + bytes.length + 1 > buffer.length) flush()
      if (bytes.length + 1 > buffer.length) {
        send(Buffer.concat([bytes, Buffer.from('\n')]))
      } else {
        used += bytes.copy(buffer, used)
        buffer[used++] = 0x0a
      }
      rows += 1
      onRow?.(rows)
    }
    const parse = (chunk: Buffer) => {
      const data = partial === null ? chunk : Buffer.concat([partial, chunk])
      let offset = Math.min(headerLeft, data.length)
      headerLeft -= offset
      while (data.length - offset >= 2) {
        const fields = data.readInt16BE(offset)
        if (fields === -1) {
          offset += 2 // the trailer
          continue
        }
        if (data.length - offset < 6) break
        const length = data.readInt32BE(offset + 2)
        if (fields !== 1 || length < 0) throw new Error(`copyLines expects one non-null column per row, got ${fields} field(s) of length ${length}`)
        if (data.length - offset < 6 + length) break
        line(data.subarray(offset + 6, offset + 6 + length))
        offset += 6 + length
      }
      // pg reuses its read buffer, so a kept remainder is copied.
      partial = offset < data.length ? Buffer.from(data.subarray(offset)) : null
    }
    const fail = (error: Error) => {
      if (failed) return
      failed = true
      output.off('error', fail)
      // The rest of the COPY is read and dropped, so the connection reaches ReadyForQuery and stays usable.
      connection?.stream.resume()
      reject(error)
    }
    // An output that fails never drains: without this the paused socket would wait forever.
    output.on('error', fail)
    const submittable = {
      submit(submitted: CopyConnection) {
        connection = submitted
        submitted.query(sql)
      },
      handleCopyData(message: { chunk: Buffer }) {
        if (failed) return
        try {
          parse(message.chunk)
        } catch (error) {
          fail(error as Error)
        }
      },
      handleCommandComplete() {
        if (!failed) flush()
      },
      handleReadyForQuery() {
        if (failed) return
        const finish = () => {
          if (failed) return
          output.off('error', fail)
          resolve(rows)
        }
        if (unwritten === 0) finish()
        else delivered = finish
      },
      handleError(error: Error) {
        fail(error)
      },
    }
    client.query(submittable as unknown as pg.QueryConfig)
  })
}
