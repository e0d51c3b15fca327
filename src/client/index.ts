/** `bulkhead/client`: a typed, fetch-only client of Bulkhead's HTTP API. */
export { BulkheadClient, BulkheadHttpError, CLIENT_ROUTES, type AnswerEvent, type ClientOptions, type ClientRoute, type TextAnswer, type TextJob, type TextMatch } from "./bulkhead-client.js";
