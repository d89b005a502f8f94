# DataLibrary client for R: the same API, socket and token as the Python SDK.

.dl <- new.env(parent = emptyenv())

# Connect to DataLibrary; inside a workspace the environment already says where and how.
dl_connect <- function(url = Sys.getenv("DATALIBRARY_URL"), token = Sys.getenv("DATALIBRARY_TOKEN")) {
  if (!nzchar(url)) stop("DataLibrary: set DATALIBRARY_URL (http(s)://host:port or unix:///path/api.sock)")
  .dl$url <- url
  .dl$token <- token
  invisible(list(url = url))
}

.dl_call <- function(method, path, body = NULL) {
  if (is.null(.dl$url)) dl_connect()
  handle <- curl::new_handle()
  url <- .dl$url
  if (startsWith(url, "unix://")) {
    curl::handle_setopt(handle, unix_socket_path = sub("^unix://", "", url))
    base <- "http://localhost"
  } else {
    base <- sub("/+$", "", url)
  }
  headers <- list(Accept = "application/json", "X-DataLibrary-Client" = "sdk")
  if (nzchar(.dl$token)) headers$Authorization <- paste("Bearer", .dl$token)
  if (!is.null(body)) {
    headers[["Content-Type"]] <- "application/json"
    payload <- jsonlite::toJSON(body, auto_unbox = TRUE, null = "null")
    curl::handle_setopt(handle, customrequest = method, postfields = as.character(payload))
  } else {
    curl::handle_setopt(handle, customrequest = method)
  }
  do.call(curl::handle_setheaders, c(list(handle), headers))
  response <- curl::curl_fetch_memory(paste0(base, "/api/v1", path), handle = handle)
  text <- rawToChar(response$content)
  Encoding(text) <- "UTF-8"
  data <- if (nzchar(text)) jsonlite::fromJSON(text, simplifyVector = FALSE) else NULL
  if (response$status_code >= 400) {
    detail <- if (is.list(data) && !is.null(data$detail)) data$detail else text
    stop(sprintf("DataLibrary %d: %s", response$status_code, detail), call. = FALSE)
  }
  data
}

# Who the token belongs to.
dl_me <- function() .dl_call("GET", "/me")

# The tables you may query (your grants decide), as a data.frame.
dl_tables <- function() {
  tables <- .dl_call("GET", "/query/tables")
  data.frame(
    name = vapply(tables, function(t) t$name, ""),
    columns = vapply(tables, function(t) length(t$columns), 0L),
    row_filtered = vapply(tables, function(t) isTRUE(t$row_filtered), FALSE),
    stringsAsFactors = FALSE
  )
}

# Run SQL over NAMESPACE.TABLE names; returns a data.frame (all pages, up to `limit` rows).
dl_sql <- function(sql, project = NULL, limit = 100000L) {
  rows <- list()
  columns <- NULL
  offset <- 0L
  repeat {
    body <- list(sql = sql, project = project, limit = min(limit, 10000L), offset = offset)
    page <- .dl_call("POST", "/query", body)
    columns <- vapply(page$columns, function(c) c$name, "")
    rows <- c(rows, page$rows)
    if (is.null(page$next_offset) || length(rows) >= limit) break
    offset <- page$next_offset
  }
  if (!length(rows)) {
    return(as.data.frame(setNames(rep(list(logical(0)), length(columns)), columns)))
  }
  frame <- as.data.frame(
    lapply(seq_along(columns), function(i) {
      values <- lapply(rows, function(r) r[[i]])
      values[vapply(values, is.null, TRUE)] <- NA
      unlist(values)
    }),
    stringsAsFactors = FALSE
  )
  names(frame) <- columns
  frame
}
