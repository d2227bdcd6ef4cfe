import CSluiceLinux

/// What the allocator reports, for the admin console's `SHOW MEM`.
public enum Memory {
    /// The bytes the allocator holds for the object: its instance plus malloc's rounding.
    public static func allocatedSize(of object: AnyObject) -> Int {
        malloc_usable_size(Unmanaged.passUnretained(object).toOpaque())
    }
}
