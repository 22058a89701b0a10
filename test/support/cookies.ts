// A browser's cookie jar for tests that drive the web admin over fetch or Hono's app.request: Set-Cookie kept,
// Max-Age=0 or an empty value removes, `header()` is the Cookie request header.
export interface CookieJar {
  readonly cookies: Map<string, string>;
  /** Every Set-Cookie seen, in order. */
  readonly setCookies: string[];
  /** Takes the response's Set-Cookie headers; returns the response. */
  readonly keep: (r: Response) => Response;
  readonly header: () => string;
}

export function cookieJar(): CookieJar {
  const cookies = new Map<string, string>();
  const setCookies: string[] = [];
  return {
    cookies,
    setCookies,
    keep: (r) => {
      for (const c of r.headers.getSetCookie()) {
        setCookies.push(c);
        const [pair = ''] = c.split(';');
        const eq = pair.indexOf('=');
        const v = pair.slice(eq + 1);
        if (/Max-Age=0/i.test(c) || v === '') cookies.delete(pair.slice(0, eq));
        else cookies.set(pair.slice(0, eq), v);
      }
      return r;
    },
    header: () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
  };
}
