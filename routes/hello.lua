-- GET /hello: the smallest route, and the benchmark's workload.
return {
    {
        method = "GET",
        path = "/hello",
        summary = "Say hello",
        handler = function()
            return 200, { message = "hello" }
        end,
    },
}
