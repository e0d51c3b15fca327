/** One HTTP call as the service tests make it: a key as a bearer token, JSON in, JSON (or text) out. */
export async function callAt(base: string, method: string, path: string, key: string | undefined, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON (metrics) */
  }
  return { status: res.status, headers: res.headers, body: parsed };
}
