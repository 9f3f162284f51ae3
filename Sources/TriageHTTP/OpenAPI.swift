import TriageJSON

/// The OpenAPI 3.1 description of every endpoint (GET /openapi.json). A test checks each
/// operation's schema against a real response, so the document cannot drift from the code.
public enum OpenAPIDocument {
    public static func document(labels: [String] = []) -> JSONValue {
        // Parsed from one literal so it reads as the JSON it is; it is valid by construction
        // (a test parses it on every run).
        var doc = (try? JSONValue.parse(text)) ?? .null
        if case .object(var pairs) = doc, !labels.isEmpty,
           let i = pairs.firstIndex(where: { $0.0 == "info" }), case .object(var info) = pairs[i].1 {
            info.append(("x-labels", .array(labels.map { .string($0) })))
            pairs[i].1 = .object(info)
            doc = .object(pairs)
        }
        return doc
    }

    static let errorResponses = #"""
        "400": {"description": "Empty batch", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
        "401": {"description": "Missing or wrong API key", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
        "413": {"description": "Payload too large", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
        "422": {"description": "Validation error (shape, too many inputs, too long)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
        "424": {"description": "Backend error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
        "429": {"description": "Model is overloaded", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
        "503": {"description": "Draining or timed out", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
        """#

    static func post(_ summary: String, request: String, response: String) -> String {
        #"""
        {"post": {"summary": "\#(summary)", "security": [{"bearer": []}],
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/\#(request)"}}}},
          "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/\#(response)"}}}},
        \#(errorResponses)}}}
        """#
    }

    static func get(_ summary: String, response: String, secured: Bool = true, contentType: String = "application/json") -> String {
        #"""
        {"get": {"summary": "\#(summary)", "security": \#(secured ? #"[{"bearer": []}]"# : "[]"),
          "responses": {"200": {"description": "OK", "content": {"\#(contentType)": {"schema": {"$ref": "#/components/schemas/\#(response)"}}}},
            "503": {"description": "Not ready (draining)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}}}}
        """#
    }

    static var text: String {
        #"""
        {"openapi": "3.1.0",
         "info": {"title": "triage serve", "version": "\#(triageVersion)",
                  "description": "A DistilBERT intent classifier at the edge: Hugging Face text-embeddings-inference's classifier endpoints, and triage's own classify and ask."},
         "paths": {
           "/predict": \#(post("Classify one input, a pair or a batch (TEI)", request: "PredictRequest", response: "PredictResponse")),
           "/": \#(post("Same as /predict (TEI)", request: "PredictRequest", response: "PredictResponse")),
           "/invocations": \#(post("Same as /predict (TEI, SageMaker)", request: "PredictRequest", response: "PredictResponse")),
           "/tokenize": \#(post("The model's tokens for each input (TEI)", request: "TokenizeRequest", response: "TokenizeResponse")),
           "/v1/classify": \#(post("Classify texts: the objects of `triage classify --json`", request: "ClassifyRequest", response: "ClassifyResponse")),
           "/v1/ask": \#(post("Answer a query through the cascade: the object of `triage ask --json`, recorded before it is sent", request: "AskRequest", response: "Decision")),
           "/info": \#(get("Model, limits and runtime (TEI)", response: "Info")),
           "/metrics": \#(get("Prometheus text format", response: "PrometheusText", contentType: "text/plain")),
           "/openapi.json": \#(get("This document", response: "OpenAPIDocument")),
           "/health": \#(get("Serving (TEI): empty body", response: "Empty", secured: false, contentType: "text/plain")),
           "/livez": \#(get("The process is alive", response: "Status", secured: false)),
           "/readyz": \#(get("Model loaded and warmed, not draining", response: "Status", secured: false))
         },
         "components": {
           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "Only when the server runs with --api-key"}},
           "schemas": {
             "ErrorResponse": {"type": "object", "required": ["error", "error_type"], "properties": {
               "error": {"type": "string"},
               "error_type": {"type": "string", "enum": ["overloaded", "validation", "tokenizer", "empty", "backend", "unhealthy", "unauthorized", "timeout"]}}},
             "Sequence": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2}]},
             "PredictRequest": {"type": "object", "required": ["inputs"], "properties": {
               "inputs": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
                                    {"type": "array", "items": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2}}]},
               "truncate": {"type": ["boolean", "null"], "default": false},
               "raw_scores": {"type": "boolean", "default": false}}},
             "Prediction": {"type": "object", "required": ["score", "label"], "properties": {"score": {"type": "number"}, "label": {"type": "string"}}},
             "PredictionList": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}},
             "PredictResponse": {"oneOf": [{"$ref": "#/components/schemas/PredictionList"},
                                           {"type": "array", "items": {"$ref": "#/components/schemas/PredictionList"}}]},
             "TokenizeRequest": {"type": "object", "required": ["inputs"], "properties": {
               "inputs": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
               "add_special_tokens": {"type": "boolean", "default": true}}},
             "SimpleToken": {"type": "object", "required": ["id", "text", "special", "start", "stop"], "properties": {
               "id": {"type": "integer"}, "text": {"type": "string"}, "special": {"type": "boolean"},
               "start": {"type": ["integer", "null"]}, "stop": {"type": ["integer", "null"]}}},
             "TokenizeResponse": {"type": "array", "items": {"type": "array", "items": {"$ref": "#/components/schemas/SimpleToken"}}},
             "ClassifyRequest": {"type": "object", "required": ["inputs"], "properties": {
               "inputs": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
               "truncate": {"type": "boolean", "default": true}}},
             "Classification": {"type": "object", "required": ["text", "label", "confidence", "out_of_scope", "fine_label", "oos_score", "probs", "logits", "tokens"], "properties": {
               "text": {"type": "string"}, "label": {"type": "string"}, "confidence": {"type": "number"},
               "out_of_scope": {"type": "boolean"}, "fine_label": {"type": "string"}, "oos_score": {"type": "number"},
               "oos_distance": {"type": "number", "description": "Feature distance to the nearest in-scope intent; only for a model whose triage.json has oos_distance."},
               "probs": {"type": "object", "additionalProperties": {"type": "number"}},
               "logits": {"type": "array", "items": {"type": "number"}}, "tokens": {"type": "integer"}}},
             "ClassifyResponse": {"type": "array", "items": {"$ref": "#/components/schemas/Classification"}},
             "AskRequest": {"type": "object", "required": ["query"], "properties": {
               "query": {"type": "string"},
               "history": {"type": "array", "items": {"type": "object", "required": ["role", "content"], "properties": {
                 "role": {"type": "string", "enum": ["user", "assistant"]}, "content": {"type": "string"}}}},
               "offline": {"type": "boolean", "default": false}}},
             "TierCall": {"type": "object", "required": ["tier", "model", "attempts", "statuses", "succeeded", "rejected_by_breaker", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "answer_confidence", "error"], "properties": {
               "tier": {"type": "string"}, "model": {"type": "string"}, "attempts": {"type": "integer"},
               "statuses": {"type": "array", "items": {"type": "integer"}}, "succeeded": {"type": "boolean"},
               "rejected_by_breaker": {"type": "boolean"}, "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"},
               "cost_usd": {"type": "number"}, "latency_ms": {"type": "number"},
               "answer_confidence": {"type": ["number", "null"]}, "error": {"type": ["string", "null"]}}},
             "Decision": {"type": "object", "required": ["query", "route", "reason", "answer", "label", "confidence", "out_of_scope", "complexity", "category", "tiers_tried", "cost_usd", "latency_ms", "latency", "cached", "review"], "properties": {
               "query": {"type": "string"}, "route": {"type": "string", "enum": ["edge", "small", "large", "none"]},
               "reason": {"type": "string"}, "answer": {"type": "string"}, "label": {"type": "string"},
               "confidence": {"type": "number"}, "out_of_scope": {"type": "boolean"},
               "complexity": {"type": "object", "required": ["total", "length", "syntax", "uncertainty", "emotion"], "properties": {
                 "total": {"type": "number"}, "length": {"type": "number"}, "syntax": {"type": "number"},
                 "uncertainty": {"type": "number"}, "emotion": {"type": "number"}}},
               "category": {"type": "string"},
               "tiers_tried": {"type": "array", "items": {"$ref": "#/components/schemas/TierCall"}},
               "cost_usd": {"type": "number"}, "latency_ms": {"type": "number"},
               "latency": {"type": "object", "required": ["tokenize_ms", "edge_ms", "cloud_ms", "total_ms"], "properties": {
                 "tokenize_ms": {"type": "number"}, "edge_ms": {"type": "number"}, "cloud_ms": {"type": "number"}, "total_ms": {"type": "number"}}},
               "cached": {"type": "boolean"}, "review": {"type": "boolean"},
               "shadow": {"type": "object"}, "candidate": {"type": "object"}}},
             "Info": {"type": "object", "required": ["model_id", "model_dtype", "model_type", "max_concurrent_requests", "max_input_length", "max_batch_tokens", "max_client_batch_size", "version", "labels", "kernels", "threads"], "properties": {
               "model_id": {"type": "string"}, "model_sha": {"type": ["string", "null"]}, "model_version": {"type": "string"},
               "model_dtype": {"type": "string", "enum": ["float32", "int8"]}, "served_model_name": {"type": "string"},
               "model_type": {"type": "object", "required": ["classifier"], "properties": {"classifier": {"type": "object", "required": ["id2label", "label2id"], "properties": {
                 "id2label": {"type": "object", "additionalProperties": {"type": "string"}},
                 "label2id": {"type": "object", "additionalProperties": {"type": "integer"}}}}}},
               "max_concurrent_requests": {"type": "integer"}, "max_input_length": {"type": "integer"},
               "max_batch_tokens": {"type": "integer"}, "max_batch_requests": {"type": ["integer", "null"]},
               "max_client_batch_size": {"type": "integer"}, "auto_truncate": {"type": "boolean"},
               "tokenization_workers": {"type": "integer"}, "version": {"type": "string"},
               "sha": {"type": ["string", "null"]}, "docker_label": {"type": ["string", "null"]},
               "labels": {"type": "array", "items": {"type": "string"}}, "out_of_scope_label": {"type": ["string", "null"]},
               "kernels": {"type": "string"}, "fp32_product": {"type": ["string", "null"], "description": "What multiplies FP32 linear layers: the kernel set (avx2) or openblas; null for an INT8 model."}, "threads": {"type": "integer"}, "payload_limit": {"type": "integer"},
               "request_timeout_s": {"type": "number"}, "triage_version": {"type": "string"}}},
             "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}, "model": {"type": "string"}}},
             "PrometheusText": {"type": "string"},
             "Empty": {"type": "string", "maxLength": 0},
             "OpenAPIDocument": {"type": "object", "required": ["openapi", "info", "paths"]}
           }
         }
        }
        """#
    }
}
