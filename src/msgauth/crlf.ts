// LF → CRLF: the queue keeps LF line ends; DKIM hashes and mailauth parses the message as it travels (CRLF).
import { Transform, type TransformCallback } from 'node:stream';

export class ToCrlf extends Transform {
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    done(null, Buffer.from(chunk.toString('latin1').replaceAll('\n', '\r\n'), 'latin1'));
  }
}
