/** The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive, RFC 9110 §11.1). */
export function bearerToken(authorization: string | undefined): string | undefined {
  const match = authorization === undefined ? null : /^bearer +(\S+) *$/i.exec(authorization);
  return match?.[1];
}
